#pragma once
// What the listeners and sessions of one proxy::server share. Internal to
// proxy/: it pulls in Asio and Beast.

#include "conf/config.hpp"
#include "log/access_log.hpp"
#include "proxy/admin.hpp"
#include "proxy/interceptor.hpp"
#include "upstream/pool.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/json/object.hpp>

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
    bool busy = false;  // a request is being read or answered

    // The keep-alive idle timeout, checked lazily: waiting for a request
    // only moves `idle_deadline`; `idle_timer` is armed when none is pending
    // and, when it fires early, re-armed at the moved deadline. So a busy
    // connection costs about one timer operation per idle_timeout, not one
    // per request. time_point::max(): not waiting for a request.
    boost::asio::steady_timer idle_timer;
    std::chrono::steady_clock::time_point idle_deadline = std::chrono::steady_clock::time_point::max();
    bool idle_timer_pending = false;
};

struct proxy_stats {
    std::atomic<std::uint64_t> connections_accepted{0};
    std::atomic<std::uint64_t> connections_rejected{0};  // over server.max_connections
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> intercepted{0};  // answered by the interceptor (the cache)
    std::atomic<std::uint64_t> forwarded{0};
    std::atomic<std::uint64_t> rejected_400{0}, rejected_408{0}, rejected_413{0}, rejected_431{0};
    std::atomic<std::uint64_t> upstream_502{0}, upstream_504{0};
    std::atomic<std::uint64_t> write_invalidations{0};  // verified writes answered 2xx: their user evicted

    boost::json::object to_json() const;
};

struct server_state {
    explicit server_state(conf::config c) : cfg(std::move(c)), pool(cfg.upstream) {
        if (cfg.log.access_log) {
            log::access_log_options options;
            options.user_hash_key = cfg.log.user_hash_key;
            access = std::make_unique<log::access_log>(std::move(options));
        }
    }

    const conf::config cfg;
    upstream::pool pool;
    // log.access_log: one line per request; null when off. Written out at
    // the end of drain() and when the state goes.
    std::unique_ptr<log::access_log> access;
    std::shared_ptr<interceptor> intercept;
    admin_registry admin;
    proxy_stats stats;
    std::atomic<bool> draining{false};

    // Live sessions, so drain() can reach them.
    std::mutex mutex;
    std::condition_variable sessions_changed;
    std::unordered_map<session_handle*, std::weak_ptr<session_handle>> sessions;
};

// One client connection: requests read, answered (by the interceptor or the
// upstream) and written in order until the connection closes.
boost::asio::awaitable<void> run_session(std::shared_ptr<server_state> state,
                                         boost::asio::ip::tcp::socket socket);

// One admin connection: /live, /ready, /stats.
boost::asio::awaitable<void> run_admin_session(std::shared_ptr<server_state> state,
                                               boost::asio::ip::tcp::socket socket);

}  // namespace sidecache::proxy
