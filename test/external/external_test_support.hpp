#pragma once
// What the external client's integration tests share: Node.js servers (the
// ElevenLabs mock, a small HTTPS server) started on a kernel-chosen port.

#include "support/child_process.hpp"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <unistd.h>

namespace sidecache::test {

// The program `name` in a folder of PATH, or "" when there is none.
inline std::string on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    const std::string p = path ? path : "/usr/bin:/usr/local/bin";
    for (std::size_t start = 0; start <= p.size();) {
        auto end = p.find(':', start);
        if (end == std::string::npos) end = p.size();
        const auto candidate = std::filesystem::path(p.substr(start, end - start)) / name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
        start = end + 1;
    }
    return {};
}

// `node <arguments>` (a shell command line) that prints `listening <port>`
// first; SIGTERMed when destroyed. port() is 0 when node is not on the PATH
// (the test then skips).
class node_server {
public:
    explicit node_server(const std::string& arguments) {
        const auto node = on_path("node");
        if (node.empty()) return;
        child_.emplace("'" + node + "' " + arguments);
        port_ = child_->listening_port();
    }
    std::uint16_t port() const { return port_; }

private:
    std::optional<child_process> child_;
    std::uint16_t port_ = 0;
};

}  // namespace sidecache::test
