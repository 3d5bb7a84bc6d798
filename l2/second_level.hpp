#pragma once
// The second level on Redis (docs/l2.md): cache::second_level over one
// Redis client per io thread. A value of a key lives at <prefix>v:<key>; the
// generations of a user and of all at <prefix>gen:u:<user> and
// <prefix>gen:all. A read is one MGET of the three (an EVAL first sets a
// generation that is missing); a value is served only if it decodes, names
// the key read and carries the current generations. A store is one EVAL
// that sets it (PX: its remaining life) only if the generations are still
// those read before the fill. An invalidation bumps the generation; until
// that succeeded, the user (or all) is "pending" in this process and the
// second level is skipped for it, so no read after an invalidation finds a
// copy the invalidation covers.

#include "cache/second_level.hpp"
#include "conf/config.hpp"
#include "l2/client.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio {
class execution_context;
}

namespace sidecache::l2 {

// What the second level needs of Redis: an l2::client (client_commands), or
// a test's fake.
class redis_commands {
public:
    virtual ~redis_commands() = default;
    // As client::command: within the operation timeout, never throws for I/O.
    virtual boost::asio::awaitable<boost::system::result<reply>> command(std::vector<std::string> args) = 0;
    virtual bool available() const = 0;  // false while the breaker is open
};

class client_commands final : public redis_commands {
public:
    explicit client_commands(client& c) : client_(c) {}
    boost::asio::awaitable<boost::system::result<reply>> command(std::vector<std::string> args) override {
        return client_.command(std::move(args));
    }
    bool available() const override { return client_.available(); }

private:
    client& client_;
};

// Counted since the start (relaxed atomics), for the metrics registry.
struct second_level_stats {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};    // nothing usable: the fill runs
    std::atomic<std::uint64_t> rejected{0};  // of the misses: a value not served (other key, garbled, old)
    std::atomic<std::uint64_t> errors{0};    // commands that failed (timeouts included) or were refused
    std::atomic<std::uint64_t> timeouts{0};  // of the errors: past op_timeout
    std::atomic<std::uint64_t> skipped{0};   // reads not made: breaker open, user or all pending
    std::atomic<std::uint64_t> stores{0};
    std::atomic<std::uint64_t> store_too_large{0};    // larger than max_value_bytes
    std::atomic<std::uint64_t> store_invalidated{0};  // an invalidation came since the read
    std::atomic<std::uint64_t> store_failed{0};       // Redis did not take it (error, timeout, breaker)
    std::atomic<std::uint64_t> bytes_read{0};
    std::atomic<std::uint64_t> bytes_written{0};
    std::atomic<std::uint64_t> bumps{0};          // generations bumped (invalidations made in Redis)
    std::atomic<std::uint64_t> bump_failures{0};  // attempts that failed (retried)
    std::atomic<std::uint64_t> lock_waits{0};     // misses that waited for another replica's fill
    std::atomic<std::uint64_t> lock_hits{0};      // of which got its value (no fill here)
};

class second_level_cache final : public cache::second_level {
public:
    // The Redis of an io thread's io_context.
    struct binding {
        boost::asio::execution_context* context;
        redis_commands* commands;
    };
    // `config`, the bindings' commands and `background_commands` (those of
    // `background`'s io_context, where pending invalidations are retried)
    // must outlive this; stop() before they go.
    second_level_cache(const conf::l2_config& config, std::vector<binding> bindings,
                       boost::asio::any_io_executor background, redis_commands& background_commands);
    ~second_level_cache() override;

    boost::asio::awaitable<cache::second_level_read> read(std::string_view key,
                                                          std::string_view user_id) override;
    boost::asio::awaitable<void> store(std::string key, std::string user_id, cache::second_level_read ticket,
                                       cache::fill_result result,
                                       std::chrono::system_clock::time_point computed_at,
                                       std::chrono::system_clock::time_point expires_at,
                                       std::chrono::milliseconds remaining) override;
    void invalidate(std::string_view tag) override;
    // An invalidation of all whose bump is held: everything is pending (no
    // read, no store) as after invalidate(), but gen:all is bumped only when
    // release_held(true) says so; release_held(false) ends it without a bump
    // (a starting replica that proved the fleet listened across its start:
    // l2/fleet_lease.hpp). An invalidation of all made meanwhile is bumped
    // as usual. Any thread.
    void invalidate_held();
    void release_held(bool bump);

    // One command on `redis` (a binding's, or the background one), counted
    // as the second level's own (errors, timeouts, bytes written): for
    // l2/fleet_lease.hpp. nullopt: failed, or an error reply.
    boost::asio::awaitable<std::optional<reply>> call(redis_commands& redis, std::vector<std::string> args);

    // Ends the retries of pending invalidations (at shutdown).
    void stop();

    // Whether a Redis client's breaker was open when last seen, within
    // breaker_open_for (/readyz: degraded). Any thread.
    bool degraded() const;
    // Invalidations not yet made in Redis (users, plus 1 for all).
    std::size_t pending() const;
    const second_level_stats& stats() const { return stats_; }

    struct state;

private:
    std::unique_ptr<state> state_;
    second_level_stats& stats_;
};

}  // namespace sidecache::l2
