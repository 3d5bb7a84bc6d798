#pragma once
// A shell command run to its end from a deploy test: its exit code and what
// it wrote (stdout and stderr, merged).

#include <catch2/catch.hpp>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace sidecache::test {

struct shell_result {
    int code = -1;
    std::string output;
};

inline shell_result shell(const std::string& command) {
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    shell_result r;
    std::array<char, 4096> buf{};
    while (auto n = std::fread(buf.data(), 1, buf.size(), p)) r.output.append(buf.data(), n);
    const int status = ::pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

// Whether `program` is on the PATH.
inline bool on_path(const std::string& program) {
    return shell("command -v " + program + " >/dev/null").code == 0;
}

}  // namespace sidecache::test
