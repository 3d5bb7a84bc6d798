#include "support/child_process.hpp"

#include "support/output_capture.hpp"

#include <catch2/catch.hpp>
#include <fmt/core.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <regex>
#include <string>
#include <poll.h>
#include <unistd.h>

namespace sidecache::test {

using std::chrono::steady_clock;

child_process::child_process(const std::string& command, const std::string& output_name) {
    // `exec 2>&1` merges stderr; the shell prints the child's pid first.
    std::string shell = "exec 2>&1; " + command + " & echo pid $!; wait";
    if (!output_name.empty() && !output_dir().empty()) {
        static std::atomic<int> started{0};
        const auto file = fmt::format("{}/{}-{}-{}.log", output_dir(), output_name, ::getpid(), ++started);
        // The same, through tee: $! is still the command's pid.
        shell = "exec 2>&1; { " + command + " & echo pid $!; wait; } 2>&1 | tee -a '" + file + "'";
    }
    out_ = ::popen(shell.c_str(), "r");
    REQUIRE(out_ != nullptr);
    auto first = line(std::chrono::seconds(20));
    REQUIRE(first.rfind("pid ", 0) == 0);
    pid_ = std::stoi(first.substr(4));
}

child_process::~child_process() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
    if (out_) ::pclose(out_);
}

void child_process::signal(int sig) {
    REQUIRE(pid_ > 0);
    REQUIRE(::kill(pid_, sig) == 0);
}

std::string child_process::line(std::chrono::milliseconds within) {
    const auto until = steady_clock::now() + within;
    std::string s;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady_clock::now());
        pollfd p{::fileno(out_), POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return s;
        char c;
        if (::read(::fileno(out_), &c, 1) != 1) return s;
        if (c == '\n') return s;
        s += c;
    }
}

unsigned short child_process::listening_port() {
    for (int i = 0; i < 20; ++i) {
        auto l = line(std::chrono::seconds(20));
        INFO(l);
        if (l.rfind("listening ", 0) == 0) return static_cast<unsigned short>(std::stoi(l.substr(10)));
        REQUIRE(!l.empty());
    }
    FAIL("no `listening <port>` line");
    return 0;
}

child_process::ports child_process::sidecache_ports() {
    static const std::regex listening(R"(listening on [0-9.]+:([0-9]+), admin on [0-9.]+:([0-9]+))");
    std::string seen;
    for (int lines = 0; lines < 50; ++lines) {
        auto l = line(std::chrono::seconds(20));
        seen += l + "\n";
        std::smatch m;
        if (std::regex_search(l, m, listening))
            return {static_cast<std::uint16_t>(std::stoi(m[1])), static_cast<std::uint16_t>(std::stoi(m[2]))};
    }
    INFO(seen);
    FAIL("sidecache did not say where it listens");
    return {};
}

std::string run_command(const std::string& command) {
    FILE* f = ::popen(command.c_str(), "r");
    REQUIRE(f != nullptr);
    std::string out;
    char buf[4096];
    while (auto n = ::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
    INFO(command);
    CHECK(::pclose(f) == 0);
    return out;
}

bool node_stand_ins_available(const std::string& source_dir) {
    std::string missing;
    if (::system("command -v node >/dev/null 2>&1") != 0)
        missing = "node is not installed (scripts/bootstrap installs it)";
    else if (::system(("test -d '" + source_dir + "/test/node_modules/pg'").c_str()) != 0)
        missing = "test/node_modules is missing (npm ci --prefix test)";
    if (missing.empty()) return true;
    // A test that cannot run fails, unless skipping was asked for.
    if (const char* skip = std::getenv("SIDECACHE_SKIP_NODE"); skip && std::string(skip) == "1") {
        WARN(missing + ": SIDECACHE_SKIP_NODE=1, test skipped");
        return false;
    }
    FAIL(missing + "; or set SIDECACHE_SKIP_NODE=1 to skip the tests that need the stand-ins");
    return false;
}

}  // namespace sidecache::test
