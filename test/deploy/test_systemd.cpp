// deploy/systemd/sidecache.service: `systemd-analyze verify` accepts it
// without a word, where systemd-analyze exists (a bad unit FAILS the test,
// it is not skipped), and it keeps the settings docs/operations.md promises.

#include "deploy/shell.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <unistd.h>

using namespace sidecache::test;

namespace {

const std::string unit_path = std::string(SIDECACHE_SOURCE_DIR) + "/deploy/systemd/sidecache.service";

std::string read(const std::string& path) {
    std::ifstream in(path);
    REQUIRE(in);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// A folder of its own holding `text` as sidecache.service, with the binary
// the unit names replaced by the one just built: verify checks that
// ExecStart's program exists.
class unit_copy {
public:
    explicit unit_copy(const std::string& text) {
        static std::atomic<int> n{0};
        dir_ = std::filesystem::temp_directory_path() /
               ("sidecache-unit-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
        std::filesystem::create_directories(dir_);
        const std::string binary = SIDECACHE_BINARY_DIR "/sidecache";
        REQUIRE(std::filesystem::exists(binary));
        std::ofstream(path()) << std::regex_replace(text, std::regex("/usr/local/bin/sidecache"), binary);
    }
    ~unit_copy() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    std::string path() const { return (dir_ / "sidecache.service").string(); }

private:
    std::filesystem::path dir_;
};

// What systemd-analyze verify says about the unit: exit code, and its lines
// about this file (warnings such as an unknown key or a bad value do not
// change the exit code, so they count as failures here).
shell_result verify(const unit_copy& unit) {
    auto r = shell("systemd-analyze verify '" + unit.path() + "'");
    std::string about;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);)
        if (line.find("sidecache.service") != std::string::npos) about += line + "\n";
    return {r.code, about};
}

}  // namespace

TEST_CASE("the systemd unit passes systemd-analyze verify, where systemd-analyze exists", "[integration]") {
    if (!on_path("systemd-analyze")) {
        WARN("systemd-analyze is not installed: the unit is not verified here");
        return;
    }
    const auto text = read(unit_path);
    unit_copy good(text);
    auto r = verify(good);
    INFO(r.output);
    CHECK(r.code == 0);
    CHECK(r.output.empty());

    // The check can fail: a misspelt value, an unknown key, a missing program.
    for (auto [from, to] : {std::pair{"ProtectSystem=strict", "ProtectSystem=stricter"},
                            std::pair{"NoNewPrivileges=yes", "NoNewPrivilege=yes"},
                            std::pair{"ExecReload=/bin/kill", "ExecReload=/bin/kil"}}) {
        CAPTURE(to);
        REQUIRE(text.find(from) != std::string::npos);
        unit_copy bad(std::regex_replace(text, std::regex(from), to));
        auto b = verify(bad);
        CHECK((b.code != 0 || !b.output.empty()));
    }
}

TEST_CASE("the systemd unit reloads with SIGHUP, stops after the drain, and is hardened", "[unit]") {
    const auto text = read(unit_path);
    for (auto line : {"ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM", "DynamicUser=yes",
                      "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                      "PrivateDevices=yes", "CapabilityBoundingSet=\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                      "SystemCallFilter=@system-service", "ExecStart=/usr/local/bin/sidecache --config "}) {
        CAPTURE(line);
        CHECK(text.find(std::string("\n") + line) != std::string::npos);
    }
    // systemd's SIGKILL must not cut the drain (server.drain_timeout's default, 10 s).
    std::smatch m;
    REQUIRE(std::regex_search(text, m, std::regex(R"(\nTimeoutStopSec=([0-9]+)s\n)")));
    CHECK(std::stoi(m[1]) > 10);
}
