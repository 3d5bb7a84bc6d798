#pragma once
// A starting replica without emptying the fleet's second level (docs/l2.md,
// "A starting replica"). A replica's first LISTEN is a flush, and a flush
// bumps gen:all: needed when nobody listened across the start (writes made
// meanwhile were bumped by no one), wasted beside a fleet that did. This
// proves the latter from the listeners' heartbeats and a lease per replica:
//
// - every replica, when it hears its own heartbeat <seq> back and has no
//   invalidation pending in Redis, writes <prefix>lease:<token> =
//   "<session>:<seq>" (session: its current LISTEN's number; PX three
//   heartbeat intervals);
// - a starting replica reads every lease before its first LISTEN; after it,
//   its flush holds the gen:all bump (second_level_cache::invalidate_held:
//   no L2 read or store meanwhile). When it hears a heartbeat <token>:<seq2>
//   of a replica whose lease had session S before that LISTEN, and that
//   lease later reads S:<seq> with seq >= seq2, the bump is dropped;
//   without that proof within two heartbeat intervals it is made.
//
// The db thread calls before_listen, heartbeat and hold_start_flush (the
// listener's hooks, its flush); the Redis calls and the proof run on
// `background` (the io thread of `commands`).

#include "conf/config.hpp"
#include "l2/second_level.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

namespace sidecache::l2 {

class fleet_lease {
public:
    // `config`, `commands` and `l2` must outlive it; stop() before they go.
    // `heartbeat_interval` > 0 (without heartbeats no lease proves anything).
    fleet_lease(const conf::l2_config& config, std::chrono::milliseconds heartbeat_interval,
                boost::asio::any_io_executor background, redis_commands& commands, second_level_cache& l2);
    ~fleet_lease();
    fleet_lease(const fleet_lease&) = delete;
    fleet_lease& operator=(const fleet_lease&) = delete;

    // db::listener_hooks::before_listen: a new session; before the first
    // LISTEN, reads the leases (bounded: a Redis that does not answer in
    // time reads as none, and the start bumps).
    boost::asio::awaitable<void> before_listen(bool first);
    // db::listener_hooks::heartbeat.
    void heartbeat(std::string_view token, std::uint64_t seq, bool ours);
    // At a flush after a LISTEN (db thread): true once, for the first
    // LISTEN's when leases were read before it: the caller invalidates all
    // with l2.invalidate_held() instead of bumping, and this releases it.
    bool hold_start_flush();
    // Ends the proof's timer (at shutdown); heartbeats are ignored after.
    void stop();

    struct state;

private:
    std::shared_ptr<state> state_;
};

}  // namespace sidecache::l2
