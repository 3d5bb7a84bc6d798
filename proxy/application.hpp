#pragma once
// sidecache assembled: the server, and when configured the cache of the
// routes with their fills (PostgreSQL, the external agent API, the legacy
// backend as fallback). proxy::run() runs one; tests start one in-process.

#include "conf/config.hpp"
#include "proxy/reload.hpp"

#include <chrono>
#include <cstdint>
#include <memory>

namespace sidecache::cache {
class service;
}  // namespace sidecache::cache
namespace sidecache::sync {
class time_source;
}  // namespace sidecache::sync
namespace sidecache::db {
class pool;
}
namespace sidecache::external {
class client;
}

namespace sidecache::proxy {

class server;

class application {
public:
    // `clock` (the cache's and the verifier's time) must outlive it.
    explicit application(conf::config cfg);
    application(conf::config cfg, const sync::time_source& clock);
    ~application();  // drains with no grace
    application(const application&) = delete;
    application& operator=(const application&) = delete;

    // Starts PostgreSQL connections (never waits for them) and the listeners.
    void start();
    // See server::drain.
    bool drain(std::chrono::milliseconds timeout);

    // Reads the configuration file again (SIGHUP, POST /reload) and applies
    // what can change live (conf/reload.hpp); the rest is reported as needing
    // a restart and left as it is. A file that does not load changes nothing
    // (its FILE:LINE:COL error is logged and returned). Counted in
    // sidecache_config_reloads_total{result}. Any thread; one at a time.
    reload_outcome reload();

    proxy::server& server();
    // Null when not configured (no jwt_secret or cache disabled; no database.url).
    cache::service* cache();
    db::pool* database();
    external::client* external();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace sidecache::proxy
