#pragma once
// The Redis of a [redis] test.
//
// The shared one is started by scripts/test (SIDECACHE_TEST_REDIS_URL) and
// used by every [redis] test at once under ctest -j2: a test uses keys of
// its own there and never stops, pauses (CLIENT PAUSE), flushes or shuts it
// down. A test that needs Redis to die, hang or come back starts its own
// (own_redis, through scripts/redis).
//
// Without SIDECACHE_TEST_REDIS_URL a [redis] test fails, unless
// SIDECACHE_SKIP_REDIS=1 asks for [redis] tests to be skipped (as [pg] tests
// do with SIDECACHE_SKIP_PG): then both helpers WARN and return nothing.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace sidecache::test {

// The shared Redis's URL (redis://127.0.0.1:PORT/0), or nullopt to skip.
std::optional<std::string> shared_redis_url();

// A redis-server of the test's own, in a temp dir, stopped when destroyed.
class own_redis {
public:
    // Started (the test fails if it cannot be), or nullptr to skip.
    static std::unique_ptr<own_redis> start();
    ~own_redis();
    own_redis(const own_redis&) = delete;
    own_redis& operator=(const own_redis&) = delete;

    const std::string& url() const { return url_; }  // redis://127.0.0.1:PORT/0
    std::uint16_t port() const { return port_; }

    // Stops it (SIGTERM, waits for the exit): its port refuses connections.
    void stop();
    // Starts it again on the same port, empty.
    void restart();
    // SIGSTOP: connections stay open and nothing is answered (a hung Redis).
    void freeze();
    // SIGCONT: it answers again, what was sent meanwhile included.
    void thaw();

private:
    own_redis() = default;
    void start_on(const std::string& port_arg);
    int pid() const;

    std::string dir_;
    std::string url_;
    std::uint16_t port_ = 0;
    bool running_ = false;
};

}  // namespace sidecache::test
