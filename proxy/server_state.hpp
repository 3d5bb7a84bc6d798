#pragma once
// What the listeners and sessions of one proxy::server share. Internal to
// proxy/: it pulls in Asio and Beast.

#include "conf/config.hpp"
#include "conf/live.hpp"
#include "log/access_log.hpp"
#include "metrics/registry.hpp"
#include "proxy/admin.hpp"
#include "proxy/interceptor.hpp"
#include "proxy/legacy_probe.hpp"
#include "upstream/pool.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/json/object.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace sidecache::proxy {

// One client connection as the server sees it. Touched only on the
// session's io thread (drain posts there).
struct session_handle {
    explicit session_handle(boost::asio::ip::tcp::socket socket)
        : stream(std::move(socket)), idle_timer(stream.get_executor()) {}
    boost::beast::tcp_stream stream;

    // The keep-alive idle timeout, checked lazily: waiting for a request
    // only moves `idle_deadline`; `idle_timer` is armed when none is pending
    // and, when it fires early, re-armed at the moved deadline. So a busy
    // connection costs about one timer operation per idle_timeout, not one
    // per request. time_point::max(): not waiting for a request.
    boost::asio::steady_timer idle_timer;
    std::chrono::steady_clock::time_point idle_deadline = std::chrono::steady_clock::time_point::max();
    bool idle_timer_pending = false;
};

// The proxy's own counters, declared in the server's metrics registry
// (rendered under "proxy" in /stats). Sharded relaxed counters: the io
// threads never share a cache line for them.
struct proxy_stats {
    explicit proxy_stats(metrics::registry& r);

    metrics::counter connections_accepted;
    metrics::counter connections_rejected;  // over server.max_connections
    metrics::counter requests;
    metrics::counter intercepted;  // answered by the interceptor (the cache)
    metrics::counter forwarded;
    metrics::counter rejected_400, rejected_408, rejected_413, rejected_431;
    metrics::counter upstream_502, upstream_504;
    metrics::counter write_invalidations;  // verified writes answered 2xx: their user evicted
    // Forwarded requests by the status class of their answer (index 1-5), and their time.
    std::array<metrics::counter, 6> passthrough_by_class;
    metrics::histogram passthrough_duration;
};

// The upstream pool's figures (rendered under "upstream" in /stats).
void declare_upstream_metrics(metrics::registry& r, const upstream::pool& pool);

struct server_state {
    explicit server_state(conf::config c)
        : cfg(std::move(c)), settings(cfg), pool(cfg.upstream), stats(metrics) {
        declare_upstream_metrics(metrics, pool);
        set_access_log(cfg.log.access_log);
    }

    // log.access_log on or off (at start, and by a reload): the log is made
    // the first time it is turned on and kept until the state goes; sessions
    // read `access_on` once per request.
    void set_access_log(bool on) {
        std::lock_guard lock(access_mutex);
        if (on && !access) {
            log::access_log_options options;
            options.user_hash_key = cfg.log.user_hash_key;
            access = std::make_unique<log::access_log>(std::move(options));
        }
        access_on.store(on ? access.get() : nullptr, std::memory_order_release);
    }

    const conf::config cfg;  // as started: what a reload cannot change (listen addresses, threads...)
    // The configuration in effect (conf/live.hpp): what a reload changes is
    // read from here where it is used (admin.token, GET /config, the
    // server's limits and timeouts once per request).
    conf::live_config settings;
    upstream::pool pool;
    // log.access_log: one line per request; null until first turned on.
    // Written out at the end of drain() and when the state goes.
    std::unique_ptr<log::access_log> access;
    std::atomic<log::access_log*> access_on{nullptr};  // `access` while on, else null
    std::mutex access_mutex;                           // set_access_log()
    std::shared_ptr<interceptor> intercept;
    admin_registry admin;
    metrics::registry metrics;  // before every module's handles into it
    proxy_stats stats;
    std::atomic<bool> draining{false};
    // While draining: when idle keep-alive connections close (drain() sets it
    // before `draining`; start_idle() reads it once `draining` is seen).
    std::atomic<std::chrono::steady_clock::time_point> drain_idle_end{
        std::chrono::steady_clock::time_point::max()};
    std::atomic<bool> listening{false};  // the client listener accepts (start() to drain())
    legacy_health legacy;                // probed while upstream.health_check_interval > 0

    // Live sessions, so drain() can reach them.
    std::mutex mutex;
    std::condition_variable sessions_changed;
    std::unordered_map<session_handle*, std::weak_ptr<session_handle>> sessions;
};

// One client connection: requests read, answered (by the interceptor or the
// upstream) and written in order until the connection closes.
boost::asio::awaitable<void> run_session(std::shared_ptr<server_state> state,
                                         boost::asio::ip::tcp::socket socket);

// Draining: `h`, if it waits for a request, waits no later than `idle_end`,
// then closes. Runs on the session's io thread (drain() posts it there).
void close_idle_by(const std::shared_ptr<session_handle>& h, std::chrono::steady_clock::time_point idle_end);

// One admin connection: /live, /ready, /stats, /metrics.
boost::asio::awaitable<void> run_admin_session(std::shared_ptr<server_state> state,
                                               boost::asio::ip::tcp::socket socket);

// Probes the legacy backend into state->legacy every
// upstream.health_check_interval until draining (proxy/legacy_probe.hpp).
boost::asio::awaitable<void> probe_legacy(std::shared_ptr<server_state> state);

}  // namespace sidecache::proxy
