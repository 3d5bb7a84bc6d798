#pragma once
// The HTTP/1.1 front of sidecache: the client listener (one coroutine per
// connection, keep-alive, pipelined requests answered in order), the admin
// listener, and the pass-through to the legacy backend.

#include "conf/config.hpp"
#include "conf/live.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace boost::asio {
class io_context;
}
namespace sidecache::upstream {
class pool;
}

namespace sidecache::metrics {
class registry;
}  // namespace sidecache::metrics

namespace sidecache::proxy {

class admin_registry;
class interceptor;

class server {
public:
    explicit server(conf::config cfg);
    ~server();  // stop()
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Before start(): the cache. Without one, every request is forwarded.
    void set_interceptor(std::shared_ptr<interceptor> i);

    // Binds server.listen (and admin.listen when enabled) and runs
    // server.threads io threads (0: one per core). Throws std::system_error
    // if a listener cannot bind.
    void start();

    std::uint16_t port() const;        // the bound client port
    std::uint16_t admin_port() const;  // 0 when the admin listener is off

    // Stops accepting, closes idle connections, lets in-flight requests
    // finish (their connections close after), and cuts what is left after
    // `timeout`. Then stops the io threads. True if everything ended in time.
    bool drain(std::chrono::milliseconds timeout);
    void stop() { drain(std::chrono::milliseconds{0}); }

    // Blocks the caller until SIGTERM or SIGINT.
    void wait_for_signal();
    // The same, and each SIGHUP meanwhile calls `on_hangup` on the caller's
    // thread (a reload). A SIGHUP blocked until then (proxy/app.cpp blocks
    // it before any thread starts) is taken now.
    void wait_for_signal(const std::function<void()>& on_hangup);

    boost::asio::io_context& context();
    // Every io thread's io_context, the first one first (one Redis client each).
    std::vector<boost::asio::io_context*> contexts();
    upstream::pool& upstream_pool();
    admin_registry& admin();
    // The counters every module declares, rendered by /stats and /metrics.
    metrics::registry& metrics();
    const conf::config& config() const;
    // The configuration in effect: config() with what reloads changed
    // (conf/live.hpp); a reload publishes here.
    conf::live_config& settings();
    // log.access_log turned on or off (a reload).
    void set_access_log(bool on);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace sidecache::proxy
