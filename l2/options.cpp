// options_from: the l2 configuration (its URL parsed by conf::parse_redis_url,
// the one parser of redis:// URLs) to the client's options.

#include "conf/config.hpp"
#include "l2/client.hpp"

namespace sidecache::l2 {

client_options options_from(const conf::redis_url& url) {
    client_options o;
    o.host = url.host;
    o.port = url.port;
    o.user = url.user;
    o.password = url.password;
    o.db = static_cast<int>(url.db);
    return o;
}

client_options options_from(const conf::l2_config& cfg) {
    auto o = options_from(cfg.url);
    o.connections = cfg.connections;
    o.op_timeout = cfg.op_timeout;
    o.connect_timeout = cfg.connect_timeout;
    o.breaker_failures = static_cast<int>(cfg.breaker_failures);
    o.breaker_open_for = cfg.breaker_open_for;
    return o;
}

}  // namespace sidecache::l2
