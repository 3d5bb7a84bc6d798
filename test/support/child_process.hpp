#pragma once
// Other programs a test needs: the Node.js stand-ins (test/legacy,
// test/mocks), the data generator, the token minter.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace sidecache::test {

// A child started through the shell, its stdout and stderr read line by line
// with a deadline (poll), SIGTERMed when destroyed. With `output_name` (for
// the sidecache binary) and SIDECACHE_TEST_OUTPUT_DIR set, all it writes is
// also copied (tee) to a file there: scripts/test checks it for secrets.
class child_process {
public:
    explicit child_process(const std::string& command, const std::string& output_name = "");
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    // The next output line, or "" when none came within `within`.
    std::string line(std::chrono::milliseconds within);
    // Reads lines until one is "listening <port>" (the stand-ins print it
    // first) and returns the port; fails the test if none comes.
    unsigned short listening_port();
    // Reads lines until sidecache's "listening on host:port, admin on
    // host:port" and returns both ports; fails the test (showing the lines
    // read) if none comes within 50 lines of 20 s each.
    struct ports {
        std::uint16_t port = 0;
        std::uint16_t admin_port = 0;
    };
    ports sidecache_ports();
    // The child's process id (the command's, after its shell's exec).
    int pid() const noexcept { return pid_; }
    // Sends it `signal` (SIGKILL: a crash, no shutdown of its own).
    void signal(int sig);

private:
    FILE* out_ = nullptr;
    int pid_ = -1;
};

// Runs a shell command to its end: its standard output (the test fails if it
// exits non-zero).
std::string run_command(const std::string& command);

// Whether the stand-ins can run: node on the PATH and test/node_modules
// installed (npm ci --prefix test). If not, the test FAILs saying why, or,
// with SIDECACHE_SKIP_NODE=1, WARNs and the caller skips.
bool node_stand_ins_available(const std::string& source_dir);

}  // namespace sidecache::test
