// The real binary: SIGTERM lets an in-flight request finish, then exit 0.

#include "support/output_capture.hpp"
#include "support/test_client.hpp"
#include "support/test_upstream.hpp"

#include <catch2/catch.hpp>
#include <fmt/core.h>
#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <regex>
#include <string>
#include <unistd.h>

using namespace sidecache;
using namespace std::chrono_literals;

namespace {

// The sidecache binary running `config_file`, its stderr readable. All it
// wrote goes to test::keep_output() at the end (scripts/test's secret check).
struct child_process {
    pid_t pid = -1;
    FILE* err = nullptr;
    std::string seen;  // the stderr lines read so far

    explicit child_process(const std::string& config_file) {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::dup2(fds[1], STDERR_FILENO);
            ::close(fds[0]);
            ::close(fds[1]);
            const std::string binary = SIDECACHE_BINARY_DIR "/sidecache";
            ::execl(binary.c_str(), binary.c_str(), "--config", config_file.c_str(), nullptr);
            ::_exit(127);
        }
        ::close(fds[1]);
        err = ::fdopen(fds[0], "r");
    }
    ~child_process() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (err) {
            // The child is gone: the rest of its stderr ends at EOF.
            char line[1024];
            while (std::fgets(line, sizeof line, err)) seen += line;
            ::fclose(err);
        }
        test::keep_output("sidecache-sigterm", seen);
    }

    // The port from "listening on host:port", reading stderr until it shows.
    std::uint16_t port() {
        static const std::regex listening(R"(listening on [0-9.]+:([0-9]+))");
        char line[1024];
        while (std::fgets(line, sizeof line, err)) {
            seen += line;
            std::cmatch m;
            if (std::regex_search(line, m, listening)) return static_cast<std::uint16_t>(std::stoi(m[1]));
        }
        return 0;
    }

    // The exit status, waiting at most `timeout`; -1 if it did not exit.
    int wait_exit(std::chrono::milliseconds timeout) {
        auto waited = std::async(std::launch::async, [p = pid] {
            int status = 0;
            ::waitpid(p, &status, 0);
            return status;
        });
        if (waited.wait_for(timeout) != std::future_status::ready) return -1;
        const int status = waited.get();
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
};

}  // namespace

TEST_CASE("SIGTERM: the in-flight request finishes, then the binary exits 0", "[integration]") {
    test::test_upstream up([](const test::recorded_request& r) {
        test::scripted_response res;
        res.body = "slow answer for " + r.target;
        res.delay = 500ms;
        return res;
    });
    const std::string config_file = fmt::format("/tmp/sidecache-sigterm-{}.yaml", ::getpid());
    {
        std::ofstream out(config_file);
        out << "server:\n  listen: 127.0.0.1:0\n  threads: 1\n  drain_timeout: 5s\n"
            << "admin:\n  enabled: false\n"
            << "upstream:\n  url: http://127.0.0.1:" << up.port() << "\n";
    }
    child_process child(config_file);
    const auto port = child.port();
    REQUIRE(port != 0);

    test::test_client client(port);
    client.send(test::get_request("/in-flight"));
    REQUIRE(up.wait_for_requests(1, 5s));
    REQUIRE(::kill(child.pid, SIGTERM) == 0);

    auto res = client.read_response();
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == "slow answer for /in-flight");
    CHECK(child.wait_exit(10s) == 0);
    std::remove(config_file.c_str());
}
