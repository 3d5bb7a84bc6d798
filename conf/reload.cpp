#include "conf/reload.hpp"

#include "conf/effective.hpp"

#include <boost/json/value.hpp>
#include <fmt/format.h>

namespace sidecache::conf {

namespace {

namespace json = boost::json;

// Same routes, in the same order, filled the same way: then their windows
// can change in place (the cache and its fills index routes by position).
bool same_routes(const cache_config& a, const cache_config& b) {
    if (a.routes.size() != b.routes.size()) return false;
    for (std::size_t i = 0; i < a.routes.size(); ++i) {
        const auto& x = a.routes[i];
        const auto& y = b.routes[i];
        if (x.name != y.name || x.path != y.path || x.query_params != y.query_params || x.fill != y.fill ||
            x.query != y.query || x.enrich_agents != y.enrich_agents)
            return false;
    }
    return true;
}

// The one list of the keys a reload applies live; each is read where it is
// used through conf::live_config (or handed over by the application).
void copy_live(config& to, const config& from) {
    auto& s = to.server;
    const auto& f = from.server;
    s.header_timeout = f.header_timeout;
    s.idle_timeout = f.idle_timeout;
    s.body_timeout = f.body_timeout;
    s.drain_timeout = f.drain_timeout;
    s.drain_idle_grace = f.drain_idle_grace;
    s.max_header_bytes = f.max_header_bytes;
    s.max_body_bytes = f.max_body_bytes;
    s.max_pipelined = f.max_pipelined;
    s.max_connections = f.max_connections;

    auto& u = to.upstream;
    const auto& v = from.upstream;
    u.max_connections = v.max_connections;
    u.max_idle_connections = v.max_idle_connections;
    u.connect_timeout = v.connect_timeout;
    u.response_timeout = v.response_timeout;
    u.idle_timeout = v.idle_timeout;

    to.admin.token = from.admin.token;
    to.log.level = from.log.level;
    to.log.access_log = from.log.access_log;

    if (same_routes(to.cache, from.cache)) {
        for (std::size_t i = 0; i < to.cache.routes.size(); ++i) {
            auto& r = to.cache.routes[i];
            const auto& n = from.cache.routes[i];
            r.ttl = n.ttl;
            r.stale_while_revalidate = n.stale_while_revalidate;
            r.stale_if_error = n.stale_if_error;
            r.utc_day_bound = n.utc_day_bound;
            r.max_waiters = n.max_waiters;
            r.wait_timeout = n.wait_timeout;
            r.fill_timeout = n.fill_timeout;
            r.failure_backoff = n.failure_backoff;
            r.failure_backoff_max = n.failure_backoff_max;
            r.degraded_ttl = n.degraded_ttl;
        }
    }

    auto& e = to.external;
    const auto& g = from.external;
    e.concurrency = g.concurrency;
    e.try_timeout = g.try_timeout;
    e.deadline = g.deadline;
    e.foreground = g.foreground;
    e.background = g.background;
    e.breaker = g.breaker;
}

// Every key, for comparing only: to_json() plus what it leaves out
// (external.config_cache_entries, log.user_hash_key), and the secrets by
// value (to_json() redacts them; l2.url's password too). Only the paths of
// differences leave this file, never a value. No l2 key is in copy_live: each
// needs a restart.
json::object comparable(const config& c) {
    auto j = to_json(c);
    j["source_file"] = "";  // the same file (erase() would reorder the keys)
    j["admin"].as_object()["token"] = c.admin.token;
    j["auth"].as_object()["jwt_secret"] = c.auth.jwt_secret;
    j["database"].as_object()["url"] = c.database.url;
    auto& ext = j["external"].as_object();
    ext["api_key"] = c.external.api_key;
    ext["config_cache_entries"] = c.external.config_cache_entries;
    j["l2"].as_object()["url"] = c.l2.url.text;
    j["log"].as_object()["user_hash_key"] = c.log.user_hash_key;
    return j;
}

std::string child(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

// The key paths where `a` and `b` differ: "server.listen", "cache.routes[1].ttl";
// an array of another length as a whole ("cache.routes").
void differences(const json::value& a, const json::value& b, const std::string& path,
                 std::vector<std::string>& out) {
    if (a.is_object() && b.is_object()) {
        const auto& x = a.as_object();
        const auto& y = b.as_object();
        for (const auto& [key, value] : x) {
            const auto* other = y.if_contains(key);
            if (other == nullptr) {
                out.push_back(child(path, key));
            } else {
                differences(value, *other, child(path, key), out);
            }
        }
        for (const auto& [key, value] : y)
            if (!x.contains(key)) out.push_back(child(path, key));
        return;
    }
    if (a.is_array() && b.is_array() && a.as_array().size() == b.as_array().size()) {
        for (std::size_t i = 0; i < a.as_array().size(); ++i)
            differences(a.as_array()[i], b.as_array()[i], fmt::format("{}[{}]", path, i), out);
        return;
    }
    if (a != b) out.push_back(path);
}

}  // namespace

reload_plan plan_reload(const config& running, const config& loaded) {
    reload_plan plan{running, {}, {}};
    copy_live(plan.effective, loaded);
    const json::value before = comparable(running);
    const json::value now = comparable(plan.effective);
    differences(before, now, "", plan.applied);
    differences(now, comparable(loaded), "", plan.needs_restart);
    return plan;
}

}  // namespace sidecache::conf
