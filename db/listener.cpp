#include "db/listener.hpp"

#include "db/pg_connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <mutex>
#include <optional>

namespace sidecache::db {

namespace net = boost::asio;
using net::awaitable;

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

}  // namespace

struct listener::impl {
    const conf::database_config& cfg;
    change_handler handler;
    bool stopping = false;             // db thread only
    pg_connection* current = nullptr;  // db thread only: abandoned by stop()
    std::optional<net::steady_timer> backoff;

    // Garbled payloads since the last log line (db thread only).
    std::uint64_t garbled_unlogged = 0;
    std::string garbled_example;
    std::optional<steady_clock::time_point> garbled_logged_at;

    std::atomic<bool> up{false};
    std::atomic<int> backend_pid{0};
    std::atomic<std::uint64_t> notifications{0}, user_changes{0}, agent_changes{0}, all_changes{0},
        garbled{0}, entries_invalidated{0}, connects{0}, reconnects{0}, connect_failures{0};
    mutable std::mutex reason_mutex;
    std::string reason_text = "listener not connected yet: changes are not seen until it is";

    impl(const conf::database_config& c, change_handler h) : cfg(c), handler(std::move(h)) {}

    void set_reason(std::string r) {
        std::lock_guard lock(reason_mutex);
        reason_text = std::move(r);
    }

    void deliver(const change& c) {
        if (handler) entries_invalidated += handler(c);
    }

    void handle(const notification& n) {
        if (n.channel != cfg.notify_channel) return;  // not ours (we LISTEN only on it)
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

    // One stderr line per garbled_log_interval at most, with a count and the
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
        std::fprintf(stderr,
                     "sidecache: %llu unreadable notification(s) on channel %s (latest '%s'): every "
                     "cached answer invalidated; expected 'user:<uuid>', 'agent:<uuid>' or 'all'\n",
                     static_cast<unsigned long long>(garbled_unlogged), cfg.notify_channel.c_str(),
                     garbled_example.c_str());
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

    // Reads notifications until the connection breaks or stop(). While quiet,
    // a SELECT 1 every listen_ping_interval finds a connection that died
    // without closing its socket.
    awaitable<void> listen(pg_connection& c) {
        while (!stopping) {
            auto got = co_await c.wait_notifications(steady_clock::now() + cfg.listen_ping_interval);
            if (!got) co_return;
            if (got->empty()) {
                flush_garbled_log(steady_clock::now());
                auto ping = co_await c.execute("SELECT 1", steady_clock::now() + cfg.query_timeout);
                if (!ping || !c.usable()) co_return;
                continue;
            }
            for (const auto& n : *got) handle(n);
        }
    }
};

listener::listener(const conf::database_config& cfg, change_handler handler)
    : impl_(std::make_unique<impl>(cfg, std::move(handler))) {}

listener::~listener() = default;

awaitable<void> listener::run(net::any_io_executor ex) {
    auto& m = *impl_;
    m.backoff.emplace(ex);
    unsigned failures = 0;
    bool was_up = false;
    while (!m.stopping) {
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
            why = c.last_error();
            m.current = nullptr;
        }
        if (m.stopping) break;
        ++failures;
        ++m.connect_failures;
        m.set_reason(
            fmt::format("listener down ({}): changes are not seen until the cache entries "
                        "expire (ttl + stale_while_revalidate)",
                        why.empty() ? "connection lost" : why));
        m.backoff->expires_after(reconnect_backoff(failures, m.cfg.reconnect_backoff_max));
        co_await m.backoff->async_wait(use_tuple);
    }
    m.up = false;
    m.set_reason("stopped");
}

void listener::stop() {
    auto& m = *impl_;
    m.stopping = true;
    if (m.current) m.current->abandon();
    if (m.backoff) m.backoff->cancel();
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
    return s;
}

std::string listener::reason() const {
    std::lock_guard lock(impl_->reason_mutex);
    return impl_->reason_text;
}

}  // namespace sidecache::db
