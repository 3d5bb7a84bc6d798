// Fuzz target: the YAML configuration loader (conf/loader) from a string,
// with a fixed environment for ${NAME} expansion.
//
// The loader's contract (conf/loader.hpp): any problem throws conf::error,
// which names the file, line and key. Any other exception escaping it is a
// finding (sidecache would not say which line is wrong), and so is a crash.
#include "conf/loader.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

using namespace sidecache;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view yaml(reinterpret_cast<const char*>(data), size);
    const conf::env_lookup env = [](std::string_view name) -> std::optional<std::string> {
        if (name == "LEGACY_URL") return "http://127.0.0.1:3000";
        if (name == "JWT_SECRET") return "fuzz-secret";
        if (name == "EMPTY") return "";
        return std::nullopt;
    };
    try {
        (void)conf::load_string(yaml, "fuzz.yaml", env);
    } catch (const conf::error&) {
    } catch (const std::exception& e) {
        std::fprintf(stderr, "conf_loader: not a conf::error: %s\n", e.what());
        std::abort();
    }
    return 0;
}
