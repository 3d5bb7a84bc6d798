#include "proxy/app.hpp"

#include "conf/effective.hpp"
#include "proxy/application.hpp"
#include "proxy/server.hpp"

#include <fmt/core.h>

#include <exception>

namespace sidecache::proxy {

int run(const conf::config& cfg) {
    try {
        for (const auto& w : conf::warnings(cfg)) fmt::print(stderr, "sidecache: warning: {}\n", w);
        application app(cfg);
        app.start();
        auto& s = app.server();
        fmt::print(stderr, "sidecache: listening on {}:{}", cfg.server.listen.host, s.port());
        if (s.admin_port()) fmt::print(stderr, ", admin on {}:{}", cfg.admin.listen.host, s.admin_port());
        fmt::print(stderr, ", upstream {}\n", cfg.upstream.url.text);
        s.wait_for_signal();
        fmt::print(stderr, "sidecache: draining (up to {} ms)\n", cfg.server.drain_timeout.count());
        const bool clean = s.drain(cfg.server.drain_timeout);
        if (!clean) fmt::print(stderr, "sidecache: drain timed out, connections cut\n");
        return 0;
    } catch (const std::exception& e) {
        fmt::print(stderr, "sidecache: {}\n", e.what());
        return 1;
    }
}

}  // namespace sidecache::proxy
