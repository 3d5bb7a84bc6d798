#include "db/pool.hpp"

#include "db/error.hpp"
#include "db/migrate.hpp"
#include "db/pg_connection.hpp"
#include "db/policy.hpp"
#include "db/refresh.hpp"
#include "sync/waiter_queue.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

namespace sidecache::db {

namespace net = boost::asio;
using boost::system::result;
using net::awaitable;

namespace {
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
// A refresh may take long on a big history; it never blocks readers.
constexpr auto refresh_deadline = std::chrono::minutes(30);
}  // namespace

struct pool::impl {
    struct slot {
        std::unique_ptr<pg_connection> conn;
        time_point connected_at{};  // when conn was made
        bool busy = false;
        std::optional<net::steady_timer> wake;  // the maintainer sleeps on it
    };

    conf::database_config cfg;
    conf::config migrate_cfg;                                 // for run_migrate on start
    std::map<std::string, std::string, std::less<>> queries;  // name -> SQL
    net::io_context ioc{1};
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
    std::thread thread;
    std::vector<slot> slots;
    // Queries waiting for a connection; a woken one is handed its slot + 1
    // (0: none, give up). Both queues are used on the db thread only.
    sync::waiter_queue waiters{sync::real_time()};             // foreground queries
    sync::waiter_queue background_waiters{sync::real_time()};  // served when no foreground one waits,
                                                               // and at least every background_share-th
    // Connections handed to foreground waiters in a row while a background
    // one waited: at `background_share - 1`, the next goes to the background,
    // so steady client fills cannot starve the refills (their entries would
    // be served stale until stale_while_revalidate ends, then miss).
    static constexpr unsigned background_share = 4;
    unsigned foreground_streak = 0;
    sync::waiter_queue ready_waiters{sync::real_time()};       // wait_ready()
    std::optional<net::steady_timer> refresh_timer;
    std::unique_ptr<db::listener> notify_listener;  // when cfg.listen_notify and on_change()
    bool stopping = false;                          // db thread only
    time_point lost_at = time_point::min();         // the pool's last connection lost; db thread only
    bool refresh_requested = false;                 // db thread only
    bool lead_requested = false;                    // db thread only: try to lead now (see recheck_leader)
    bool refresher_idle = false;                    // db thread only: it waits on refresh_timer
    pg_connection* refreshing = nullptr;            // the refresh's connection, while it runs
    std::unique_ptr<pg_connection> leader_conn;     // tries, then holds, the refresher's lock
    const std::string refresher_id = refresher_name();  // host:pid, in sidecache.refresh_log

    std::atomic<bool> is_ready{false};
    std::atomic<unsigned long> refresh_count{0};
    std::atomic<bool> is_leader{false};
    std::atomic<std::size_t> connected{0}, in_use{0};
    std::atomic<std::uint64_t> waits{0}, reconnect_waits{0}, retries{0}, query_errors{0}, queue_timeouts{0},
        statement_timeouts{0}, refresh_ms_total{0};
    mutable std::mutex stats_mutex;
    refresher_stats stats;  // all but leader and refreshes
    mutable std::mutex reason_mutex;
    std::string reason_text = "not started";

    void set_reason(std::string r) {
        std::lock_guard lock(reason_mutex);
        reason_text = std::move(r);
    }

    void update_ready() {
        bool any = false;
        std::size_t count = 0;
        for (auto& s : slots) count += s.conn != nullptr;
        any = count > 0;
        connected.store(count, std::memory_order_relaxed);
        if (is_ready && !any) lost_at = steady_clock::now();
        is_ready = any;
        if (any) {
            set_reason("");
            ready_waiters.wake_all();
        }
    }

    // ---- connections ----

    awaitable<void> maintain(std::size_t i) {
        unsigned failures = 0;
        auto& s = slots[i];
        while (!stopping) {
            if (!s.conn) {
                std::string why;
                auto deadline = steady_clock::now() + cfg.connect_timeout;
                auto c = co_await pg_connection::connect(ioc.get_executor(), cfg.url, deadline, &why);
                if (c) {
                    auto ok = co_await setup(**c, deadline);
                    if (ok) {
                        s.conn = std::move(*c);
                        s.connected_at = steady_clock::now();
                        s.busy = false;
                        failures = 0;
                        update_ready();
                        recheck_leader();
                        release(static_cast<int>(i), false);
                        continue;
                    }
                    why = (*c)->last_error();
                }
                ++failures;
                set_reason_if_down(fmt::format("postgresql: {}", why));
                auto backoff = reconnect_backoff(failures, cfg.reconnect_backoff_max);
                // Fills wait for the pool until reconnect_wait after it lost
                // everything (acquire()): meanwhile, retry every 100 ms rather
                // than back off past the end of a short restart; the backoff
                // proper starts after that window.
                if (!is_ready && steady_clock::now() < reconnect_until()) {
                    backoff = std::min<std::chrono::milliseconds>(backoff, std::chrono::milliseconds(100));
                    failures = 0;
                }
                s.wake->expires_after(backoff);
            } else {
                s.wake->expires_at(net::steady_timer::time_point::max());
            }
            co_await s.wake->async_wait(use_tuple);  // backoff, or until broken/stopping
        }
    }

    // A pool connection made means PostgreSQL answers again (after a
    // restart, a failover, an operator's kill, or an outage at start). If
    // the refresher has no working connection of its own (the server closed
    // it, taking the session's lock; or its last try failed), it takes its
    // turn now, not at the next check up to refresh_interval away: until
    // then no replica would lead, and /stats would say the old leader does.
    // Only while the refresher waits: otherwise it is using that connection.
    void recheck_leader() {
        if (!refresher_idle || cfg.refresh_interval.count() == 0) return;
        if (leader_conn && !leader_conn->peer_closed()) return;
        lose_leadership();
        lead_requested = true;
        refresh_timer->cancel();
    }

    // Until when fills wait for the pool to reconnect (acquire()): reconnect_wait
    // after it lost its last connection; time_point::min() if it never had one.
    time_point reconnect_until() const {
        return lost_at == time_point::min() ? lost_at : lost_at + cfg.reconnect_wait;
    }

    void set_reason_if_down(std::string why) {
        update_ready();
        if (!is_ready) set_reason(std::move(why));
    }

    // Every new connection: UTC, then each query prepared under its name.
    awaitable<bool> setup(pg_connection& c, time_point deadline) {
        if (!co_await c.execute("SET TIME ZONE 'UTC'", deadline)) co_return false;
        for (const auto& [name, sql] : queries)
            if (!co_await c.prepare(name, sql, 1, deadline)) co_return false;
        co_return true;
    }

    // A free connection, else a wait for one until `deadline`. When the pool
    // has just lost every connection (PostgreSQL restarting, a failover), a
    // query waits for one to come back until database.reconnect_wait after
    // the loss rather than fail at once: a restart of a second or two costs
    // its fills a wait, not a fallback each to a legacy backend that reads
    // the same restarting database. Past that (a longer outage), or when the
    // pool never connected: not_ready at once, and the caller falls back.
    awaitable<result<int>> acquire(time_point deadline, query_priority priority) {
        for (;;) {
            if (stopping) co_return error::shutting_down;
            for (std::size_t i = 0; i < slots.size(); ++i) {
                if (!slots[i].conn || slots[i].busy) continue;
                // Closed by the server while idle: replaced, never used.
                if (slots[i].conn->peer_closed()) {
                    set_reason_if_down(fmt::format("postgresql: {}", slots[i].conn->last_error()));
                    release(static_cast<int>(i), true);
                    continue;
                }
                slots[i].busy = true;
                co_return static_cast<int>(i);
            }
            if (!is_ready) {
                const auto until = std::min(deadline, reconnect_until());
                if (steady_clock::now() >= until) co_return error::not_ready;
                reconnect_waits.fetch_add(1, std::memory_order_relaxed);
                co_await ready_waiters.wait(until);  // woken by update_ready()
                continue;
            }
            auto& queue = priority == query_priority::foreground ? waiters : background_waiters;
            waits.fetch_add(1, std::memory_order_relaxed);
            auto ticket = queue.enqueue(ioc.get_executor(), deadline);
            const auto woke = co_await ticket.wait();
            if (woke == sync::wake::woken && ticket.value() > 0)
                co_return static_cast<int>(ticket.value() - 1);
            if (stopping) co_return error::shutting_down;
            // Woken with nothing: the pool lost its last connection (release()).
            if (woke == sync::wake::woken) continue;
            co_return error::timeout;
        }
    }

    // Back to the pool; a broken connection is dropped and its maintainer
    // woken to replace it. A usable one goes to the oldest waiter first.
    void release(int i, bool broken) {
        auto& s = slots[i];
        if (broken || !s.conn) {
            s.conn.reset();
            s.busy = false;
            update_ready();
            s.wake->cancel();
            if (!is_ready) {
                // Nobody can serve the waiters now: they wait for a
                // reconnection (acquire()), or fall back.
                waiters.wake_all();
                background_waiters.wake_all();
            }
            return;
        }
        const auto handed = static_cast<std::uint64_t>(i) + 1;
        if (!stopping && hand_over(handed)) {
            s.busy = true;
            return;
        }
        s.busy = false;
    }

    // To the oldest foreground waiter, or a background one (see
    // background_share); false if none waits.
    bool hand_over(std::uint64_t handed) {
        const bool background_waits = background_waiters.size() > 0;
        if (background_waits && foreground_streak + 1 >= background_share &&
            background_waiters.wake_one(handed)) {
            foreground_streak = 0;
            return true;
        }
        if (waiters.wake_one(handed)) {
            foreground_streak = background_waits ? foreground_streak + 1 : 0;
            return true;
        }
        foreground_streak = 0;
        return background_waiters.wake_one(handed);
    }

    awaitable<result<std::string>> run_query(std::string name, std::string user, time_point deadline,
                                             query_priority priority) {
        if (stopping) co_return error::shutting_down;
        if (!queries.contains(name)) co_return error::unknown_query;
        std::string params[] = {std::move(user)};
        // A statement whose connection is lost under it (its backend
        // terminated: a restart, a failover, an operator) runs again on
        // another connection, within the deadline: the fill statements only
        // read, like the idempotent requests a proxy retries on a reset. As
        // often as the lost connection predates the statement (a restart
        // closes them all within milliseconds, each dropped once lost), and
        // once after a loss on a connection made since.
        const auto began = steady_clock::now();
        for (bool retried = false;;) {
            auto slot = co_await acquire(deadline, priority);
            if (!slot) {
                query_errors.fetch_add(1, std::memory_order_relaxed);
                if (slot.error() == error::timeout) queue_timeouts.fetch_add(1, std::memory_order_relaxed);
                co_return slot.error();
            }
            auto& conn = *slots[*slot].conn;
            const bool predates = slots[*slot].connected_at < began;
            in_use.fetch_add(1, std::memory_order_relaxed);
            // The statement gets database.query_timeout from now, within the
            // caller's deadline; past it, it is cancelled and the caller falls back.
            auto query_deadline = std::min(deadline, steady_clock::now() + cfg.query_timeout);
            auto r = co_await conn.query_prepared(name, params, query_deadline);
            in_use.fetch_sub(1, std::memory_order_relaxed);
            bool broken = !conn.usable();
            if (broken) set_reason_if_down(fmt::format("postgresql: {}", conn.last_error()));
            release(*slot, broken);
            if (!r && r.error() == error::connection_failed && (predates || !retried) && !stopping &&
                steady_clock::now() < deadline) {
                retries.fetch_add(1, std::memory_order_relaxed);
                retried = true;
                continue;
            }
            if (!r) query_errors.fetch_add(1, std::memory_order_relaxed);
            if (!r && r.error() == error::timeout) statement_timeouts.fetch_add(1, std::memory_order_relaxed);
            if (!r) co_return r.error();
            if (!*r) co_return error::no_such_user;
            co_return std::move(**r);
        }
    }

    // ---- views ----

    awaitable<void> refresher() {
        // refresh_interval 0: never on a schedule, only on request_refresh().
        const bool scheduled = cfg.refresh_interval.count() > 0;
        bool due = scheduled;  // a scheduled refresher checks at start too
        while (!stopping) {
            // Closed while a refresh ran (a restart then): its lock is gone,
            // so it no longer says it leads. Its turn comes at the pool's next
            // connection made (recheck_leader), or else at the next check.
            if (leader_conn && leader_conn->peer_closed()) lose_leadership();
            if (!due && !refresh_requested && !lead_requested) {
                if (scheduled) {
                    auto at = next_refresh_at(std::chrono::system_clock::now(), cfg.refresh_interval);
                    refresh_timer->expires_after(at - std::chrono::system_clock::now());
                } else {
                    refresh_timer->expires_at(net::steady_timer::time_point::max());
                }
                refresher_idle = true;
                auto waited = co_await refresh_timer->async_wait(use_tuple);  // or a request
                refresher_idle = false;
                if (stopping) break;
                // Expired: the schedule's turn; cancelled: a request.
                due = scheduled && !std::get<0>(waited);
            }
            if (lead_requested) {  // the schedule's turn, early (recheck_leader)
                lead_requested = false;
                due = scheduled;
            }
            if (refresh_requested) {
                refresh_requested = false;
                co_await refresh_once(refresh_reason::requested);
            }
            if (due) {
                due = false;
                co_await lead_and_decide();
            }
        }
    }

    // The schedule's turn: only the leader (lock 4 held by leader_conn's
    // session) reads the facts and refreshes when they say it changes
    // something; the others only try to become the leader.
    awaitable<void> lead_and_decide() {
        if (!co_await hold_leadership()) co_return;
        auto deadline = steady_clock::now() + cfg.query_timeout;
        auto text = co_await leader_conn->execute(refresh_facts_sql, deadline);
        std::optional<refresh_facts> facts;
        if (text && *text) facts = parse_refresh_facts(**text);
        if (!facts) {
            refresher_failed(text ? fmt::format("refresh_facts() answered \"{}\"", text->value_or("NULL"))
                                  : leader_conn->last_error());
            if (!leader_conn->usable()) lose_leadership();
            co_return;
        }
        auto reason = decide_refresh(*facts, cfg.refresh_marked_users);
        if (reason == refresh_reason::none) {
            std::lock_guard lock(stats_mutex);
            ++stats.skipped;
            co_return;
        }
        co_await refresh_once(reason);
    }

    // True when this pool is the leader: it held the lock already on a
    // connection that still works, or it took it now. A session holds the
    // lock until it ends, so a leader that dies frees it for the next try.
    awaitable<bool> hold_leadership() {
        if (leader_conn && !leader_conn->usable()) lose_leadership();
        if (leader_conn && is_leader) co_return true;
        auto deadline = steady_clock::now() + cfg.connect_timeout;
        if (!leader_conn) {
            std::string why;
            auto c = co_await pg_connection::connect(ioc.get_executor(), cfg.url, deadline, &why);
            if (!c) {
                refresher_failed(why);
                co_return false;
            }
            leader_conn = std::move(*c);
        }
        auto locked = co_await leader_conn->execute(leader_try_lock_sql, deadline);
        if (!locked) {
            refresher_failed(leader_conn->last_error());
            lose_leadership();
            co_return false;
        }
        is_leader = *locked == "t";
        co_return is_leader.load();
    }

    void lose_leadership() {
        leader_conn.reset();
        is_leader = false;
    }

    void refresher_failed(std::string why) {
        std::lock_guard lock(stats_mutex);
        ++stats.failures;
        stats.last_error = std::move(why);
    }

    awaitable<void> refresh_once(refresh_reason reason) {
        const auto started = steady_clock::now();
        auto deadline = started + refresh_deadline;
        std::string why;
        auto c = co_await pg_connection::connect(ioc.get_executor(), cfg.url,
                                                 steady_clock::now() + cfg.connect_timeout, &why);
        if (!c) {
            refresher_failed(why);
            co_return;
        }
        auto& conn = **c;
        refreshing = &conn;
        struct forget {
            pg_connection*& p;
            ~forget() { p = nullptr; }
        } forget_on_exit{refreshing};
        // The views' day and hour buckets are UTC ones.
        auto locked = co_await conn.execute("SET TIME ZONE 'UTC'", deadline);
        if (locked) locked = co_await conn.execute(refresh_try_lock_sql, deadline);
        if (!locked) {
            refresher_failed(conn.last_error());
            co_return;
        }
        if (*locked != "t") co_return;  // another sidecar refreshes
        for (const auto& step : refresh_steps(reason, refresher_id)) {
            if (!co_await conn.execute(step, deadline)) {
                refresher_failed(conn.last_error());
                if (conn.usable()) co_await conn.execute(refresh_abort_sql, deadline);
                co_return;
            }
        }
        co_await conn.execute(refresh_unlock_sql, deadline);
        ++refresh_count;
        std::lock_guard lock(stats_mutex);
        stats.last_reason = std::string(to_string(reason));
        stats.last_duration_ms = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - started).count());
        refresh_ms_total.fetch_add(stats.last_duration_ms, std::memory_order_relaxed);
        stats.last_error.clear();
    }

    void load_queries() {
        namespace fs = std::filesystem;
        std::error_code ec;
        fs::directory_iterator it(cfg.queries_dir, ec);
        if (ec)
            throw std::runtime_error(
                fmt::format("database.queries_dir '{}': {}", cfg.queries_dir, ec.message()));
        for (const auto& e : it) {
            if (e.path().extension() != ".sql") continue;
            std::ifstream in(e.path(), std::ios::binary);
            std::ostringstream text;
            text << in.rdbuf();
            if (!in) throw std::runtime_error(fmt::format("cannot read {}", e.path().string()));
            queries.emplace(e.path().stem().string(), text.str());
        }
    }
};

pool::pool(const conf::database_config& cfg) : impl_(std::make_unique<impl>()) {
    impl_->cfg = cfg;
    impl_->migrate_cfg.database = cfg;
    if (cfg.url.empty()) {
        impl_->set_reason("database.url is empty: no PostgreSQL fills");
        return;
    }
    impl_->load_queries();
}

pool::~pool() {
    stop();
}

void pool::start() {
    auto& m = *impl_;
    if (m.cfg.url.empty() || m.thread.joinable()) return;
    m.set_reason("connecting to postgresql");
    m.work.emplace(m.ioc.get_executor());
    m.slots.resize(std::max<std::size_t>(1, m.cfg.pool_size));
    for (auto& s : m.slots) s.wake.emplace(m.ioc.get_executor());
    m.refresh_timer.emplace(m.ioc.get_executor());
    net::post(m.ioc, [&m] {
        if (m.cfg.migrate_on_start) {
            // Blocking, but on the db thread: no I/O thread waits for it.
            if (run_migrate(m.migrate_cfg, false) != 0) m.set_reason("postgresql: migrations failed");
        }
        for (std::size_t i = 0; i < m.slots.size(); ++i) net::co_spawn(m.ioc, m.maintain(i), net::detached);
        net::co_spawn(m.ioc, m.refresher(), net::detached);
        if (m.notify_listener)
            net::co_spawn(m.ioc, m.notify_listener->run(m.ioc.get_executor()), net::detached);
    });
    m.thread = std::thread([&m] { m.ioc.run(); });
}

void pool::stop() {
    auto& m = *impl_;
    if (!m.thread.joinable()) return;
    net::post(m.ioc, [&m] {
        m.stopping = true;
        m.is_ready = false;
        m.set_reason("stopped");
        m.waiters.shutdown();
        m.background_waiters.shutdown();
        m.ready_waiters.shutdown();
        for (auto& s : m.slots) s.wake->cancel();
        m.refresh_timer->cancel();
        if (m.refreshing) m.refreshing->abandon();  // the server rolls it back
        if (m.leader_conn) m.leader_conn->abandon();
        if (m.notify_listener) m.notify_listener->stop();
        m.work.reset();
    });
    // Coroutines end as their waits are cancelled; a statement in flight
    // ends by its own deadline.
    m.thread.join();
    for (auto& s : m.slots) s.conn.reset();
    m.leader_conn.reset();  // its session ends: another replica can lead
    m.is_leader = false;
}

awaitable<result<std::string>> pool::query_json(std::string_view query_name, std::string_view user_id,
                                                time_point deadline, query_priority priority) {
    auto& m = *impl_;
    if (m.cfg.url.empty()) co_return error::not_configured;
    if (!m.thread.joinable()) co_return error::not_ready;
    // Runs on the db thread; the completion comes back to our executor.
    co_return co_await net::co_spawn(
        m.ioc, m.run_query(std::string(query_name), std::string(user_id), deadline, priority),
        net::use_awaitable);
}

awaitable<bool> pool::wait_ready(time_point deadline) {
    auto& m = *impl_;
    if (m.is_ready) co_return true;
    if (!m.thread.joinable()) co_return false;
    co_return co_await net::co_spawn(
        m.ioc,
        [&m, deadline]() -> awaitable<bool> {
            if (m.is_ready || m.stopping) co_return m.is_ready.load();
            co_await m.ready_waiters.wait(deadline);
            co_return m.is_ready.load();
        },
        net::use_awaitable);
}

bool pool::ready() const noexcept {
    return impl_->is_ready;
}

std::string pool::reason() const {
    std::lock_guard lock(impl_->reason_mutex);
    return impl_->reason_text;
}

void pool::request_refresh() {
    auto& m = *impl_;
    if (!m.thread.joinable()) return;
    net::post(m.ioc, [&m] {
        m.refresh_requested = true;
        if (m.refresh_timer) m.refresh_timer->cancel();
    });
}

unsigned long pool::refreshes() const noexcept {
    return impl_->refresh_count;
}

refresher_stats pool::refresher() const {
    auto& m = *impl_;
    std::lock_guard lock(m.stats_mutex);
    auto s = m.stats;
    s.leader = m.is_leader;
    s.refreshes = m.refresh_count;
    return s;
}

pool_stats pool::stats() const {
    const auto& m = *impl_;
    pool_stats s;
    s.connections = m.connected.load(std::memory_order_relaxed);
    s.in_use = m.in_use.load(std::memory_order_relaxed);
    s.waits = m.waits.load(std::memory_order_relaxed);
    s.reconnect_waits = m.reconnect_waits.load(std::memory_order_relaxed);
    s.retries = m.retries.load(std::memory_order_relaxed);
    s.errors = m.query_errors.load(std::memory_order_relaxed);
    s.queue_timeouts = m.queue_timeouts.load(std::memory_order_relaxed);
    s.statement_timeouts = m.statement_timeouts.load(std::memory_order_relaxed);
    s.refresh_ms_total = m.refresh_ms_total.load(std::memory_order_relaxed);
    return s;
}

void pool::on_change(change_handler handler, freshness_handler freshness, listener_hooks hooks) {
    auto& m = *impl_;
    if (m.cfg.url.empty() || !m.cfg.listen_notify || m.thread.joinable()) return;
    m.notify_listener =
        std::make_unique<db::listener>(m.cfg, std::move(handler), std::move(freshness), std::move(hooks));
}

std::optional<listener_stats> pool::notify_stats() const {
    if (!impl_->notify_listener) return std::nullopt;
    return impl_->notify_listener->stats();
}

std::string pool::notify_reason() const {
    return impl_->notify_listener ? impl_->notify_listener->reason() : std::string();
}

std::string pool::heartbeat_reason() const {
    return impl_->notify_listener ? impl_->notify_listener->heartbeat_reason() : std::string();
}

}  // namespace sidecache::db
