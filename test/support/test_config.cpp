#include "test_config.hpp"

#include <string>

namespace sidecache::test {

conf::config test_config(std::uint16_t upstream_port) {
    conf::config cfg;
    cfg.source_file = "(test)";
    cfg.server.listen = {"127.0.0.1", 0};
    cfg.server.threads = 2;
    cfg.server.header_timeout = conf::duration{2'000};
    cfg.server.idle_timeout = conf::duration{5'000};
    cfg.server.body_timeout = conf::duration{5'000};
    cfg.server.drain_timeout = conf::duration{5'000};
    cfg.admin.listen = {"127.0.0.1", 0};
    cfg.upstream.url.scheme = "http";
    cfg.upstream.url.host = "127.0.0.1";
    cfg.upstream.url.port = upstream_port;
    cfg.upstream.url.text = "http://127.0.0.1:" + std::to_string(upstream_port);
    cfg.upstream.connect_timeout = conf::duration{1'000};
    cfg.upstream.response_timeout = conf::duration{2'000};
    // No legacy probe: its connects would show in the upstream's accept
    // counts. Tests of /readyz turn it on.
    cfg.upstream.health_check_interval = conf::duration{0};
    cfg.cache.enabled = false;
    // A line per request on stdout: scripts/test checks every line of the
    // run for the tests' secrets (scripts/check-secrets).
    cfg.log.access_log = true;
    return cfg;
}

}  // namespace sidecache::test
