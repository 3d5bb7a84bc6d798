// Fuzz target: the configuration's value parsers (conf/values): durations,
// sizes, endpoints, URLs, booleans, numbers and ${NAME} expansion. The first
// input byte picks the parser, the rest is the text.
//
// Checks beyond the sanitizers: a parsed duration or size, formatted, parses
// back to the same value; an expansion without '$' in the text is the text.
#include "conf/values.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

using namespace sidecache;

namespace {

void fail(const char* what, std::string_view text) {
    std::fprintf(stderr, "conf_values: %s: \"%.*s\"\n", what, static_cast<int>(text.size()), text.data());
    std::abort();
}

std::optional<std::string> env(std::string_view name) {
    if (name == "HOST") return "db.internal";
    if (name == "EMPTY") return "";
    if (name == "DOLLAR") return "$";
    return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    switch (data[0] % 8) {
    case 0:
        if (auto d = conf::parse_duration(text)) {
            auto again = conf::parse_duration(conf::format_duration(*d));
            if (!again || *again != *d) fail("a duration does not round-trip", text);
        }
        break;
    case 1:
        if (auto s = conf::parse_size(text)) {
            auto again = conf::parse_size(conf::format_size(*s));
            if (!again || *again != *s) fail("a size does not round-trip", text);
        }
        break;
    case 2:
        (void)conf::parse_endpoint(text);
        break;
    case 3:
        (void)conf::parse_base_url(text);
        break;
    case 4:
        (void)conf::parse_bool(text);
        break;
    case 5:
        if (auto n = conf::parse_unsigned(text, 1, 65535); n && (*n < 1 || *n > 65535)) fail("out of range", text);
        break;
    case 6:
        if (auto n = conf::parse_number(text, 0.0, 1.0); n && !(*n >= 0.0 && *n <= 1.0)) fail("out of range", text);
        break;
    default:
        if (auto s = conf::expand_env(text, env); s && text.find('$') == std::string_view::npos && *s != text)
            fail("an expansion changed text without '$'", text);
        break;
    }
    return 0;
}
