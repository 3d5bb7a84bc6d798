#include "db/listener.hpp"

#include "db/pg_connection.hpp"
#include "log/logger.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <mutex>
#include <optional>
#include <random>

namespace sidecache::db {

namespace net = boost::asio;
using net::awaitable;
using namespace std::chrono_literals;
using namespace net::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
// At most one log line about garbled payloads per this long.
constexpr auto garbled_log_interval = std::chrono::seconds(10);

// A payload as one printable line: at most 64 bytes, the rest escaped.
std::string printable(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < 64; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
            out += static_cast<char>(c);
        else
            out += fmt::format("\\x{:02x}", c);
    }
    if (s.size() > 64) out += fmt::format("... ({} bytes)", s.size());
    return out;
}

// Tells this listener's heartbeats from other replicas' on the same channel.
std::string random_token() {
    std::random_device rd;
    return fmt::format("{:08x}{:08x}", rd(), rd());
}

std::int64_t to_ns(steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

struct listener::impl {
    const conf::database_config& cfg;
    change_handler handler;
    freshness_handler freshness;
    listener_hooks hooks;
    bool stopping = false;             // db thread only
    pg_connection* current = nullptr;  // db thread only: abandoned by stop() or heartbeat_timeout
    std::optional<net::steady_timer> backoff;
    std::optional<net::steady_timer> watchdog;

    // Heartbeat (db thread only, but for the atomics below).
    const std::string token = random_token();
    std::uint64_t heartbeat_seq = 0;
    bool ever_listened = false;     // no heartbeat is due before the first LISTEN
    bool abandoned_silent = false;  // the current connection was given up at heartbeat_timeout

    // Garbled payloads since the last log line (db thread only).
    std::uint64_t garbled_unlogged = 0;
    std::string garbled_example;
    std::optional<steady_clock::time_point> garbled_logged_at;

    std::atomic<bool> up{false};
    std::atomic<int> backend_pid{0};
    std::atomic<std::uint64_t> notifications{0}, user_changes{0}, agent_changes{0}, all_changes{0},
        garbled{0}, entries_invalidated{0}, connects{0}, reconnects{0}, connect_failures{0},
        heartbeats_sent{0}, heartbeats_received{0}, foreign_heartbeats{0}, heartbeats_overdue{0};
    std::atomic<std::int64_t> proven_at_ns{0};  // steady clock; 0: never proven
    std::atomic<bool> overdue{false};
    mutable std::mutex reason_mutex;
    std::string reason_text = "listener not connected yet: changes are not seen until it is";

    impl(const conf::database_config& c, change_handler h, freshness_handler f, listener_hooks k)
        : cfg(c), handler(std::move(h)), freshness(std::move(f)), hooks(std::move(k)) {}

    bool beating() const { return cfg.heartbeat_interval.count() > 0; }

    steady_clock::time_point proven_at() const {
        return steady_clock::time_point(std::chrono::nanoseconds(proven_at_ns.load()));
    }

    // The channel works now: our own heartbeat came back, or a LISTEN just
    // took effect and the cache was flushed of everything from before it.
    void prove(steady_clock::time_point now) {
        proven_at_ns = to_ns(now);
        if (!overdue.exchange(false)) return;
        if (freshness) freshness(true);
        if (watchdog) watchdog->cancel();  // it slept toward heartbeat_timeout
    }

    // Runs beside the connection loop. Two intervals without proof: tells the
    // cache (no entry is fresh from now on), but keeps the connection: on a
    // loaded server the heartbeat is late, not lost, and so is every change
    // queued before it, so hearing it proves the channel again with nothing
    // to flush. heartbeat_timeout without proof: the connection may be
    // silently dead; it is given up, run() replaces it, and its LISTEN
    // flushes what the gap may have hidden.
    awaitable<void> watch() {
        if (!beating()) co_return;
        while (!stopping) {
            const auto now = steady_clock::now();
            if (ever_listened && !overdue && heartbeat_overdue(proven_at(), now, cfg.heartbeat_interval)) {
                overdue = true;
                ++heartbeats_overdue;
                if (freshness) freshness(false);
            }
            if (overdue && current && !abandoned_silent && now - proven_at() >= cfg.heartbeat_timeout) {
                abandoned_silent = true;
                current->abandon();
            }
            watchdog->expires_at(next_watch(now));
            co_await watchdog->async_wait(use_tuple);
        }
    }

    steady_clock::time_point next_watch(steady_clock::time_point now) const {
        if (!ever_listened) return now + cfg.heartbeat_interval;
        if (!overdue) return proven_at() + 2 * cfg.heartbeat_interval + 1ms;
        if (current && !abandoned_silent) return std::max(now + 1ms, proven_at() + cfg.heartbeat_timeout);
        return now + cfg.heartbeat_interval;  // reconnecting: its LISTEN proves the channel
    }

    // NOTIFYs our own channel; false when the connection failed. A NOTIFY
    // slow to complete on a loaded server is waited for up to
    // heartbeat_timeout, not cancelled at query_timeout: a cancelled beat
    // would cost a reconnect and a flush of every entry.
    awaitable<bool> beat(pg_connection& c) {
        auto sql =
            fmt::format("NOTIFY {}, '{}'", cfg.notify_channel, heartbeat_payload(token, ++heartbeat_seq));
        ++heartbeats_sent;
        auto r = co_await c.execute(sql, steady_clock::now() + cfg.heartbeat_timeout);
        co_return r.has_value() && c.usable();
    }

    void set_reason(std::string r) {
        std::lock_guard lock(reason_mutex);
        reason_text = std::move(r);
    }

    void deliver(const change& c) {
        if (handler) entries_invalidated += handler(c);
    }

    void handle(const notification& n) {
        if (n.channel != cfg.notify_channel) return;  // not ours (we LISTEN only on it)
        const auto of = classify_heartbeat(n.payload, token);
        if (of != heartbeat_of::none && hooks.heartbeat)
            if (auto h = parse_heartbeat(n.payload))
                hooks.heartbeat(h->token, h->seq, of == heartbeat_of::ours);
        switch (of) {
        case heartbeat_of::ours:
            ++heartbeats_received;
            prove(steady_clock::now());
            return;
        case heartbeat_of::other:
            ++foreign_heartbeats;
            return;
        case heartbeat_of::none:
            break;
        }
        auto c = parse_notification(n.payload);
        // Counted once handled: a counter that moved means the cache has
        // been invalidated (tests wait on it).
        deliver(c);
        ++notifications;
        if (c.why == change::cause::garbled) {
            ++garbled;
            note_garbled(n.payload);
        } else if (c.what == change::kind::user) {
            ++user_changes;
        } else if (c.what == change::kind::agent) {
            ++agent_changes;
        } else {
            ++all_changes;
        }
    }

    // One log line per garbled_log_interval at most, with a count and the
    // latest example: a flood of bad payloads cannot flood the log.
    void note_garbled(std::string_view payload) {
        ++garbled_unlogged;
        garbled_example = printable(payload);
        auto now = steady_clock::now();
        if (garbled_logged_at && now - *garbled_logged_at < garbled_log_interval) return;
        flush_garbled_log(now);
    }

    void flush_garbled_log(steady_clock::time_point now) {
        if (garbled_unlogged == 0) return;
        log::warn("listener",
                  "unreadable notification(s): every cached answer invalidated; expected 'user:<uuid>', "
                  "'agent:<uuid>' or 'all'",
                  {{"count", garbled_unlogged}, {"channel", cfg.notify_channel}, {"latest", garbled_example}});
        garbled_unlogged = 0;
        garbled_logged_at = now;
    }

    // Checks that the triggers notify the channel we listen on. "" when they do.
    awaitable<std::string> check_triggers(pg_connection& c, time_point deadline) {
        auto ch = co_await c.execute("SELECT channel FROM sidecache.notify_settings", deadline);
        if (!ch) {
            if (!c.usable()) co_return std::string("listener: ") + c.last_error();
            co_return std::string(
                "sidecache.notify_settings is missing: migration 005 is not applied, "
                "no trigger notifies (run sidecache migrate)");
        }
        if (!*ch) co_return std::string("sidecache.notify_settings is empty: no trigger notifies");
        if (**ch != cfg.notify_channel)
            co_return fmt::format(
                "the triggers notify channel {}, database.notify_channel is {} "
                "(run sidecache migrate with this configuration)",
                **ch, cfg.notify_channel);
        co_return std::string();
    }

    // Reads notifications until the connection breaks or stop(). With
    // heartbeats, one NOTIFY of our own every heartbeat_interval (the first at
    // once); the wait for notifications ends at the next one's time. Without,
    // a SELECT 1 after every quiet listen_ping_interval finds a connection
    // that died without closing its socket.
    awaitable<void> listen(pg_connection& c) {
        auto next_beat = steady_clock::now();
        while (!stopping) {
            const auto wait_until = beating() ? next_beat : steady_clock::now() + cfg.listen_ping_interval;
            auto got = co_await c.wait_notifications(wait_until);
            if (!got) co_return;
            for (const auto& n : *got) handle(n);
            const auto now = steady_clock::now();
            if (got->empty()) flush_garbled_log(now);
            if (beating()) {
                if (now < next_beat) continue;
                next_beat = now + cfg.heartbeat_interval;
                if (!co_await beat(c)) co_return;
            } else if (got->empty()) {
                auto ping = co_await c.execute("SELECT 1", now + cfg.query_timeout);
                if (!ping || !c.usable()) co_return;
            }
        }
    }

    // Connects, LISTENs, reads; reconnects with backoff until stop().
    awaitable<void> connect_loop(net::any_io_executor ex);
};

listener::listener(const conf::database_config& cfg, change_handler handler, freshness_handler freshness,
                   listener_hooks hooks)
    : impl_(std::make_unique<impl>(cfg, std::move(handler), std::move(freshness), std::move(hooks))) {}

listener::~listener() = default;

awaitable<void> listener::run(net::any_io_executor ex) {
    auto& m = *impl_;
    m.backoff.emplace(ex);
    m.watchdog.emplace(ex);
    co_await (m.connect_loop(ex) && m.watch());
    m.up = false;
    m.set_reason("stopped");
}

awaitable<void> listener::impl::connect_loop(net::any_io_executor ex) {
    auto& m = *this;
    unsigned failures = 0;
    bool was_up = false;
    while (!m.stopping) {
        if (m.hooks.before_listen) co_await m.hooks.before_listen(!m.ever_listened);
        if (m.stopping) break;
        std::string why;
        auto deadline = steady_clock::now() + m.cfg.connect_timeout;
        // Scoped: a broken connection is closed before the backoff, not after.
        if (auto conn = co_await pg_connection::connect(ex, m.cfg.url, deadline, &why); conn && !m.stopping) {
            auto& c = **conn;
            m.current = &c;
            // The channel is checked by the loader: a plain lower-case identifier.
            if (co_await c.execute("LISTEN " + m.cfg.notify_channel, deadline)) {
                failures = 0;
                m.set_reason(co_await m.check_triggers(c, steady_clock::now() + m.cfg.query_timeout));
                // LISTEN is in effect: whatever changed before it (while we were
                // down, or before the first connect) may be in the cache.
                m.deliver(change{change::kind::all, change::cause::connected, {}});
                // Everything cached now was filled after the LISTEN: any later
                // write's notification reaches this connection, so entries may
                // be fresh again (the heartbeat proves it within two intervals,
                // or the watchdog takes it back).
                m.ever_listened = true;
                m.prove(steady_clock::now());
                // Counted up only now: whoever sees it knows the cache caught up.
                m.backend_pid = c.backend_pid();
                if (was_up) ++m.reconnects;
                was_up = true;
                ++m.connects;
                m.up = true;
                co_await m.listen(c);
                m.up = false;
                m.backend_pid = 0;
            }
            why = m.abandoned_silent ? fmt::format("no heartbeat for {} ms: connection abandoned",
                                                   std::chrono::duration_cast<std::chrono::milliseconds>(
                                                       steady_clock::now() - m.proven_at())
                                                       .count())
                                     : c.last_error();
            m.abandoned_silent = false;
            m.current = nullptr;
        }
        if (m.stopping) break;
        ++failures;
        ++m.connect_failures;
        m.set_reason(fmt::format("listener down ({}): changes are not seen until it is back; {}",
                                 why.empty() ? "connection lost" : why,
                                 m.beating() ? "past two heartbeats no entry is served as fresh"
                                             : "entries expire after ttl + stale_while_revalidate"));
        m.backoff->expires_after(reconnect_backoff(failures, m.cfg.reconnect_backoff_max));
        co_await m.backoff->async_wait(use_tuple);
    }
    // watch() ends too.
    if (m.watchdog) m.watchdog->cancel();
}

void listener::stop() {
    auto& m = *impl_;
    m.stopping = true;
    if (m.current) m.current->abandon();
    if (m.backoff) m.backoff->cancel();
    if (m.watchdog) m.watchdog->cancel();
}

listener_stats listener::stats() const {
    const auto& m = *impl_;
    listener_stats s;
    s.up = m.up;
    s.notifications = m.notifications;
    s.user_changes = m.user_changes;
    s.agent_changes = m.agent_changes;
    s.all_changes = m.all_changes;
    s.garbled = m.garbled;
    s.entries_invalidated = m.entries_invalidated;
    s.connects = m.connects;
    s.reconnects = m.reconnects;
    s.connect_failures = m.connect_failures;
    s.backend_pid = m.backend_pid;
    s.heartbeats_sent = m.heartbeats_sent;
    s.heartbeats_received = m.heartbeats_received;
    s.foreign_heartbeats = m.foreign_heartbeats;
    if (m.proven_at_ns != 0)
        s.heartbeat_age_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - m.proven_at())
                .count();
    s.heartbeat_overdue = m.overdue;
    s.heartbeats_overdue = m.heartbeats_overdue;
    return s;
}

std::string listener::heartbeat_reason() const {
    const auto& m = *impl_;
    if (!m.overdue) return std::string();
    const auto silent =
        std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - m.proven_at());
    return fmt::format(
        "listener: no heartbeat for {} ms (heartbeat_interval {} ms): the channel is not proven, "
        "no entry is served as fresh until it is heard (the connection is replaced after {} ms)",
        silent.count(), m.cfg.heartbeat_interval.count(), m.cfg.heartbeat_timeout.count());
}

std::string listener::reason() const {
    std::lock_guard lock(impl_->reason_mutex);
    return impl_->reason_text;
}

}  // namespace sidecache::db
