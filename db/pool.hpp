#pragma once
// A pool of PostgreSQL connections that runs the fill queries of db/queries
// and keeps the materialized views fresh.
//
// The pool owns one thread with its own single-threaded io_context: every
// libpq call happens there, never on an I/O thread (see pg_connection.cpp for
// why a single reactor thread). query_json() hops there and back.

#include "conf/config.hpp"
#include "db/listener.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sidecache::db {

enum class query_priority { foreground, background };

// The view refresher of one pool (docs/freshness.md "The refresher").
struct refresher_stats {
    bool leader = false;             // holds the refresher's lock: its schedule decides refreshes
    unsigned long refreshes = 0;     // refreshes this pool completed (scheduled or requested)
    unsigned long skipped = 0;       // the leader's checks that found nothing to refresh
    unsigned long failures = 0;      // checks or refreshes that failed (PostgreSQL down, no migration 008)
    std::string last_reason;         // of this pool's last refresh: first, day, marks, requested
    std::uint64_t last_duration_ms = 0;
    std::string last_error;          // of the last failure, "" when none
};

// The query pool's figures (metrics); safe from any thread.
struct pool_stats {
    std::size_t connections = 0;        // connected now, statements prepared
    std::size_t in_use = 0;             // of which running a query now
    std::uint64_t waits = 0;            // queries that waited for a connection
    std::uint64_t reconnect_waits = 0;  // queries that waited for the pool to reconnect (it had no connection)
    std::uint64_t retries = 0;          // statements run again after their connection was lost under them
    std::uint64_t errors = 0;           // queries that failed: not ready, timeout, connection or SQL error
    std::uint64_t queue_timeouts = 0;      // of which: no connection came free before the caller's deadline
    std::uint64_t statement_timeouts = 0;  // of which: cancelled at query_timeout (or the caller's deadline)
    std::uint64_t refresh_ms_total = 0;  // time this pool's completed refreshes took, added up
};

class pool {
public:
    using time_point = std::chrono::steady_clock::time_point;

    // Reads every <name>.sql of cfg.queries_dir (throws std::runtime_error,
    // naming the file, when one cannot be read). Does not connect yet.
    explicit pool(const conf::database_config& cfg);
    ~pool();  // stop()s
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;

    // Starts the db thread: migrations first if cfg.migrate_on_start (a
    // failure is reported through reason(), the pool still runs), then
    // pool_size connections replaced with exponential backoff when they
    // break, and the view refresher: at start, then every refresh_interval and
    // just after each UTC midnight, it tries to become (or stays) the one
    // leader of the database, and the leader refreshes when that would change
    // something (db::decide_refresh); refresh_interval 0: no leader, only on
    // request. Returns at once: PostgreSQL being down never stops sidecache
    // from starting.
    void start();
    // Cancels everything, waits for the db thread. Pending queries complete
    // with error::shutting_down.
    void stop();

    // Runs db/queries/<query_name>.sql with $1 = user_id on a pooled
    // connection: the single text column of its answer (the whole response
    // body). Waits for a connection until `deadline`; the statement then runs
    // until `deadline` or cfg.query_timeout, whichever comes first, and is
    // cancelled (PQcancel) past it with error::timeout. When the pool has
    // just lost its last connection, it waits for one to come back until
    // cfg.reconnect_wait after the loss (within `deadline`), then fails with
    // not_ready, at once if the pool never connected. A statement
    // whose connection is lost under it runs again on another one: as often
    // as the lost one predates the statement (a restart), once otherwise. Errors (all mean "fall back to the upstream fill"):
    // not_configured, not_ready, timeout, connection_failed, query_failed, unknown_query, no_such_user (the
    // SQL found no active user), shutting_down. Never blocks the caller's thread; completes on the caller's
    // executor.
    // A background query (a stale-while-revalidate refill: its readers
    // are already answered) gets a connection when no foreground one waits,
    // and at least one hand-over in four while both wait: a refill herd
    // does not delay the fills that clients wait on much, and steady client
    // fills do not starve the refills.
    boost::asio::awaitable<boost::system::result<std::string>> query_json(
        std::string_view query_name, std::string_view user_id, time_point deadline,
        query_priority priority = query_priority::foreground);

    // At least one connection is up and its statements prepared.
    bool ready() const noexcept;
    // Completes when ready() (true) or at the deadline (false); for start-up
    // checks and tests, which must not sleep.
    boost::asio::awaitable<bool> wait_ready(time_point deadline);
    // Why not ready ("" when ready), for the admin /ready page.
    std::string reason() const;

    // Asks for a view refresh now, leader or not (one sidecar at a time:
    // skipped while another holds the refresh lock). Call it when PostgreSQL
    // reports a change that the views should fold in early; safe from any thread.
    void request_refresh();
    // How many refreshes this pool completed (tests, metrics).
    unsigned long refreshes() const noexcept;
    // The refresher's state and counters; safe from any thread.
    refresher_stats refresher() const;
    pool_stats stats() const;

    // Invalidation by LISTEN/NOTIFY: when cfg.listen_notify, start() also
    // runs a db::listener on the db thread whose changes go to `handler`
    // (called on the db thread: it must be thread-safe), and the flips of
    // its heartbeat to `freshness` (db/listener.hpp). Before start().
    void on_change(change_handler handler, freshness_handler freshness = {}, listener_hooks hooks = {});
    // The listener's counters; nullopt when there is none.
    std::optional<listener_stats> notify_stats() const;
    // Why invalidation by NOTIFY is not working, "" when it is (or there is
    // no listener); for the admin /ready page.
    std::string notify_reason() const;
    // Why the listener's channel is unproven (its heartbeat overdue), "" when
    // it is not (or there is no listener or no heartbeat).
    std::string heartbeat_reason() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace sidecache::db
