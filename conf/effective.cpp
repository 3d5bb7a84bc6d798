#include "conf/effective.hpp"

#include "conf/values.hpp"

#include <boost/json/array.hpp>
#include <fmt/format.h>

#include <regex>

namespace sidecache::conf {

namespace {

namespace json = boost::json;

std::string secret(const std::string& value) {
    return value.empty() ? std::string() : std::string(redacted);
}

std::string address(const endpoint& e) {
    if (e.host.find(':') != std::string::npos) return fmt::format("[{}]:{}", e.host, e.port);
    return fmt::format("{}:{}", e.host, e.port);
}

json::object retry(const retry_profile& r) {
    return {{"attempts", r.attempts},
            {"base", format_duration(r.base)},
            {"max", format_duration(r.max)},
            {"multiplier", r.multiplier}};
}

json::object route(const route_config& r) {
    json::array params;
    for (const auto& p : r.query_params) params.emplace_back(p);
    json::object o{{"name", r.name},
                   {"path", r.path},
                   {"query_params", std::move(params)},
                   {"ttl", format_duration(r.ttl)},
                   {"stale_while_revalidate", format_duration(r.stale_while_revalidate)},
                   {"stale_if_error", format_duration(r.stale_if_error)},
                   {"utc_day_bound", r.utc_day_bound},
                   {"fill", r.fill == fill_kind::postgres ? "postgres" : "upstream"},
                   {"enrich_agents", r.enrich_agents},
                   {"max_waiters", r.max_waiters},
                   {"wait_timeout", format_duration(r.wait_timeout)},
                   {"fill_timeout", format_duration(r.fill_timeout)},
                   {"failure_backoff", format_duration(r.failure_backoff)},
                   {"failure_backoff_max", format_duration(r.failure_backoff_max)},
                   {"degraded_ttl", format_duration(r.degraded_ttl)}};
    if (r.fill == fill_kind::postgres) o["query"] = r.query;
    return o;
}

json::object server(const server_config& c) {
    return {{"listen", address(c.listen)},
            {"threads", c.threads},
            {"max_header_bytes", format_size(c.max_header_bytes)},
            {"max_body_bytes", format_size(c.max_body_bytes)},
            {"header_timeout", format_duration(c.header_timeout)},
            {"idle_timeout", format_duration(c.idle_timeout)},
            {"body_timeout", format_duration(c.body_timeout)},
            {"drain_timeout", format_duration(c.drain_timeout)},
            {"drain_idle_grace", format_duration(c.drain_idle_grace)},
            {"max_pipelined", c.max_pipelined},
            {"max_connections", c.max_connections}};
}

json::object upstream(const upstream_config& c) {
    return {{"url", c.url.text},
            {"max_connections", c.max_connections},
            {"max_idle_connections", c.max_idle_connections},
            {"connect_timeout", format_duration(c.connect_timeout)},
            {"response_timeout", format_duration(c.response_timeout)},
            {"idle_timeout", format_duration(c.idle_timeout)},
            {"health_check_interval", format_duration(c.health_check_interval)}};
}

json::object cache(const cache_config& c) {
    json::array routes;
    for (const auto& r : c.routes) routes.emplace_back(route(r));
    const auto& m = c.midnight_refill;
    const auto& w = c.warmup;
    return {{"enabled", c.enabled},
            {"max_bytes", format_size(c.max_bytes)},
            {"shards", c.shards},
            {"midnight_refill",
             {{"enabled", m.enabled},
              {"recent", format_duration(m.recent)},
              {"max_entries", m.max_entries},
              {"concurrency", m.concurrency},
              {"spread", format_duration(m.spread)}}},
            {"warmup",
             {{"enabled", w.enabled},
              {"users", w.users},
              {"lookback", format_duration(w.lookback)},
              {"concurrency", w.concurrency},
              {"ready_timeout", format_duration(w.ready_timeout)}}},
            {"routes", std::move(routes)}};
}

json::object database(const database_config& c) {
    return {{"url", redact_url(c.url)},
            {"pool_size", c.pool_size},
            {"connect_timeout", format_duration(c.connect_timeout)},
            {"query_timeout", format_duration(c.query_timeout)},
            {"reconnect_backoff_max", format_duration(c.reconnect_backoff_max)},
            {"reconnect_wait", format_duration(c.reconnect_wait)},
            {"migrate_on_start", c.migrate_on_start},
            {"refresh_interval", format_duration(c.refresh_interval)},
            {"refresh_marked_users", c.refresh_marked_users},
            {"queries_dir", c.queries_dir},
            {"migrations_dir", c.migrations_dir},
            {"notify_channel", c.notify_channel},
            {"listen_notify", c.listen_notify},
            {"listen_ping_interval", format_duration(c.listen_ping_interval)},
            {"heartbeat_interval", format_duration(c.heartbeat_interval)},
            {"heartbeat_timeout", format_duration(c.heartbeat_timeout)}};
}

json::object external(const external_config& c) {
    const auto& b = c.breaker;
    return {{"url", c.url.text},
            {"api_key", secret(c.api_key)},
            {"verify_tls", c.verify_tls},
            {"max_connections", c.max_connections},
            {"concurrency", c.concurrency},
            {"try_timeout", format_duration(c.try_timeout)},
            {"deadline", format_duration(c.deadline)},
            {"foreground", retry(c.foreground)},
            {"background", retry(c.background)},
            {"breaker",
             {{"consecutive_failures", b.consecutive_failures},
              {"failure_rate", b.failure_rate},
              {"window", format_duration(b.window)},
              {"min_requests", b.min_requests},
              {"cool_down", format_duration(b.cool_down)}}},
            {"config_ttl", format_duration(c.config_ttl)},
            {"max_stale", format_duration(c.max_stale)}};
}

json::object l2(const l2_config& c) {
    return {{"url", redact_url(c.url.text)},
            {"connections", c.connections},
            {"op_timeout", format_duration(c.op_timeout)},
            {"connect_timeout", format_duration(c.connect_timeout)},
            {"key_prefix", c.key_prefix},
            {"max_value_bytes", format_size(c.max_value_bytes)},
            {"breaker_failures", c.breaker_failures},
            {"breaker_open_for", format_duration(c.breaker_open_for)},
            {"fill_lock_wait", format_duration(c.fill_lock_wait)},
            {"fill_lock_ttl", format_duration(c.fill_lock_ttl)}};
}

}  // namespace

std::string redact_url(std::string_view url) {
    // URL userinfo "scheme://user:password@", then any "password=..." of a
    // conninfo string ("host=h password=p") or a URL query ("?password=p").
    static const std::regex userinfo(R"(^([A-Za-z][A-Za-z0-9+.-]*://[^:/@?#]*):[^@/?#]*@)");
    static const std::regex quoted(R"((password\s*=\s*)'(?:[^'\\]|\\.)*')", std::regex::icase);
    static const std::regex bare(R"((password\s*=\s*)[^\s&'][^\s&]*)", std::regex::icase);
    const std::string mark(redacted);
    std::string out = std::regex_replace(std::string(url), userinfo, "$1:" + mark + "@");
    out = std::regex_replace(out, quoted, "$1" + mark);
    out = std::regex_replace(out, bare, "$1" + mark);
    return out;
}

boost::json::object to_json(const config& cfg) {
    return {{"source_file", cfg.source_file},
            {"server", server(cfg.server)},
            {"admin",
             {{"listen", address(cfg.admin.listen)},
              {"enabled", cfg.admin.enabled},
              {"token", secret(cfg.admin.token)}}},
            {"upstream", upstream(cfg.upstream)},
            {"auth",
             {{"jwt_secret", secret(cfg.auth.jwt_secret)},
              {"leeway", format_duration(cfg.auth.leeway)},
              {"token_cache_entries", cfg.auth.token_cache_entries}}},
            {"cache", cache(cfg.cache)},
            {"database", database(cfg.database)},
            {"external", external(cfg.external)},
            {"l2", l2(cfg.l2)},
            {"log", {{"level", cfg.log.level}, {"access_log", cfg.log.access_log}}}};
}

bool is_loopback(std::string_view host) {
    return host == "localhost" || host == "::1" || host.starts_with("127.");
}

std::vector<std::string> warnings(const config& cfg) {
    std::vector<std::string> out;
    if (cfg.admin.enabled && cfg.admin.token.empty() && !is_loopback(cfg.admin.listen.host)) {
        out.push_back(fmt::format(
            "{}: admin.listen {} is reachable from other hosts and admin.token is empty: anyone who "
            "can connect may purge the cache and read /config and /stats (set admin.token, e.g. "
            "SIDECACHE_ADMIN_TOKEN, or listen on 127.0.0.1)",
            cfg.source_file, address(cfg.admin.listen)));
    }
    return out;
}

}  // namespace sidecache::conf
