#pragma once
// The LISTEN side of cache invalidation (docs/freshness.md, "Invalidation"):
// one dedicated connection that LISTENs on database.notify_channel and turns
// each notification that 005_notify.sql's triggers send into a db::change
// for its owner's handler. db/ does not know the cache: the handler does the
// invalidating (proxy/application.cpp wires it to cache::service).
//
// It runs as a coroutine on the db pool's single-threaded io_context (the
// pool owns it: pool::on_change), so every libpq call stays on that thread.
// The handler is called there too. When the connection breaks it reconnects
// with the pool's backoff; after every (re)connect, since notifications may
// have been missed while it was down (or before the first LISTEN), it hands
// the handler one change::kind::all with cause connected.
//
// Heartbeat (database.heartbeat_interval, docs/freshness.md "Heartbeat"):
// every interval it NOTIFYs its own channel on its own connection,
// "heartbeat:<token>:<seq>", and hearing it back proves the channel end to
// end. Two intervals without its own heartbeat (after the first LISTEN) and
// the channel is overdue: the freshness handler is told (false: serve no
// entry as fresh). Hearing it late ends that (true): the connection kept
// every change queued before it. Not heard for heartbeat_timeout, the
// connection is abandoned and replaced; the next LISTEN and its flush
// (change::kind::all) end it.

#include "conf/config.hpp"
#include "db/policy.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace sidecache::db {

// Called on the db thread for every change; returns how many cache entries
// it invalidated (for the counters).
using change_handler = std::function<std::size_t(const change&)>;
// Called on the db thread when the channel's state flips: false when the
// heartbeat is overdue (no entry may be fresh), true when it is proven again.
using freshness_handler = std::function<void(bool proven)>;

// What the second level's fleet lease needs of the listener (l2/fleet_lease.hpp,
// docs/l2.md "A starting replica"). Both on the db thread.
struct listener_hooks {
    // Awaited before every connect, so that what it reads precedes the
    // LISTEN; `first`: no LISTEN has succeeded yet. Must be bounded.
    std::function<boost::asio::awaitable<void>(bool first)> before_listen;
    // Every heartbeat heard on the channel (ours: this listener's own), in
    // the order of the channel: after every change delivered before it.
    std::function<void(std::string_view token, std::uint64_t seq, bool ours)> heartbeat;
};

struct listener_stats {
    bool up = false;                        // LISTENing now
    std::uint64_t notifications = 0;        // received on our channel
    std::uint64_t user_changes = 0;         // of which "user:<uuid>"
    std::uint64_t agent_changes = 0;        // of which "agent:<uuid>"
    std::uint64_t all_changes = 0;          // of which "all"
    std::uint64_t garbled = 0;              // of which unreadable (handled as "all")
    std::uint64_t entries_invalidated = 0;  // cache entries the handler hit
    std::uint64_t connects = 0;             // successful LISTENs (the first one included)
    std::uint64_t reconnects = 0;           // of which after a lost connection
    std::uint64_t connect_failures = 0;
    int backend_pid = 0;  // the listening connection's server process; 0 when down
    std::uint64_t heartbeats_sent = 0;
    std::uint64_t heartbeats_received = 0;  // our own, back on the channel
    std::uint64_t foreign_heartbeats = 0;   // other listeners' (replicas'), ignored
    std::int64_t heartbeat_age_ms = -1;     // since the channel was last proven; -1: never
    bool heartbeat_overdue = false;         // no entry is served as fresh meanwhile
    std::uint64_t heartbeats_overdue = 0;   // times the channel went overdue (late or dead)
};

class listener {
public:
    // `cfg` must outlive it.
    listener(const conf::database_config& cfg, change_handler handler, freshness_handler freshness = {},
             listener_hooks hooks = {});
    ~listener();
    listener(const listener&) = delete;
    listener& operator=(const listener&) = delete;

    // Runs until stop(): connect, LISTEN, read notifications, reconnect.
    // `ex` is the db thread's (single-threaded) executor.
    boost::asio::awaitable<void> run(boost::asio::any_io_executor ex);
    // Ends run() promptly (the connection is abandoned). On the db thread.
    void stop();

    // Any thread.
    listener_stats stats() const;
    // Why invalidation by NOTIFY is not working ("" when it is), for /ready.
    std::string reason() const;
    // Why the channel is unproven ("" when its heartbeat is on time or off):
    // no entry is served as fresh meanwhile.
    std::string heartbeat_reason() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace sidecache::db
