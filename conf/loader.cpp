#include "conf/loader.hpp"

#include "conf/values.hpp"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

namespace sidecache::conf {

namespace {

using namespace std::chrono_literals;

constexpr duration one_day = 24h;
constexpr duration one_week = 7 * one_day;
constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * kib;
constexpr std::size_t gib = 1024 * mib;

// The file being loaded and the environment its ${NAME}s come from.
struct context {
    std::string file;
    const env_lookup& env;

    [[noreturn]] void fail(const YAML::Mark& mark, const std::string& path,
                           const std::string& message) const {
        // yaml-cpp marks are 0-based, and -1 for an empty document.
        int line = mark.line >= 0 ? mark.line + 1 : 1;
        int column = mark.column >= 0 ? mark.column + 1 : 1;
        throw error(file, line, column, path, message);
    }
};

std::string_view kind_name(const YAML::Node& node) {
    switch (node.Type()) {
    case YAML::NodeType::Map:
        return "a map";
    case YAML::NodeType::Sequence:
        return "a list";
    case YAML::NodeType::Scalar:
        return "a single value";
    default:
        return "nothing";
    }
}

template <class Words>
std::string join(const Words& words) {
    std::string out;
    for (std::string_view w : words) {
        if (!out.empty()) out += ", ";
        out += w;
    }
    return out;
}

// Edits (insert, delete, replace, swap two neighbours) from a to b.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t replace = d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, replace});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

// The known key a misspelt one most likely meant: at most 2 edits away, and
// at most one edit per 3 characters so that short keys need a close match.
std::optional<std::string> closest(std::string_view typed, const std::vector<std::string>& known) {
    std::size_t limit = std::clamp<std::size_t>(typed.size() / 3, 1, 2);
    std::optional<std::string> best;
    std::size_t best_distance = limit + 1;
    for (const auto& k : known) {
        std::size_t d = edit_distance(typed, k);
        if (d < best_distance) {
            best = k;
            best_distance = d;
        }
    }
    return best;
}

// One value of the document: its node, key path, and the position messages
// point at (the value itself, or its key when the value is empty).
struct value_ref {
    const context* ctx;
    YAML::Node node;
    std::string path;
    YAML::Mark mark;

    [[noreturn]] void fail(const std::string& message) const { ctx->fail(mark, path, message); }

    // The scalar's text with ${NAME}s expanded.
    std::string text() const {
        if (node.IsNull()) fail("a value is required (write \"\" for an empty string)");
        if (!node.IsScalar()) fail(fmt::format("expected a single value, got {}", kind_name(node)));
        auto expanded = expand_env(node.Scalar(), ctx->env);
        if (!expanded) fail(expanded.error().message);
        return *expanded;
    }

    template <class T>
    T check(parsed<T> result) const {
        if (!result) fail(result.error().message);
        return std::move(*result);
    }
};

// A YAML map read as one of the config structs. Its readers ask for keys by
// name (get, time, count, ...); each key they ask for is recorded, whether the
// file has it or not, so that finish() can refuse the keys nobody asked for: a
// key is named once, where it is read. Each key at most once. An absent or
// empty section reads as all defaults.
class section {
public:
    // where: the position of the section's own key, for "required key is
    // missing" and for a section that is not a map.
    section(const context& ctx, const YAML::Node& node, std::string path, YAML::Mark where)
        : ctx_(&ctx), path_(std::move(path)), where_(where) {
        if (!node.IsDefined() || node.IsNull()) return;
        if (!node.IsMap())
            ctx.fail(node.Mark(), path_, fmt::format("expected a map of keys, got {}", kind_name(node)));
        for (auto it = node.begin(); it != node.end(); ++it) {
            YAML::Node key = it->first;  // a copy: it-> is a temporary proxy
            if (!key.IsScalar()) ctx.fail(key.Mark(), path_, "a key must be a plain name");
            std::string name = key.Scalar();
            if (auto seen = entries_.find(name); seen != entries_.end())
                ctx.fail(key.Mark(), child(name),
                         fmt::format("duplicate key (first at line {})", seen->second.key_mark.line + 1));
            entries_.emplace(name, entry{key.Mark(), it->second});
            order_.push_back(std::move(name));
        }
    }

    // Call once every reader of this section is done: refuses the first key
    // of the file (in its order) that no reader asked for, listing the ones
    // they did and suggesting the closest.
    void finish() const {
        for (const auto& name : order_) {
            if (std::find(asked_.begin(), asked_.end(), name) != asked_.end()) continue;
            std::string hint;
            if (auto close = closest(name, asked_)) hint = fmt::format(", did you mean \"{}\"?", *close);
            ctx_->fail(entries_.find(name)->second.key_mark, child(name),
                       fmt::format("unknown key{} (expected one of: {})", hint, join(asked_)));
        }
    }

    // Reads the nested section `key` with reader(section) and finish()es it.
    template <class Reader>
    auto read(std::string_view key, Reader&& reader) const {
        section s = sub(key);
        auto out = reader(s);
        s.finish();
        return out;
    }

    const std::string& path() const { return path_; }

    std::string child(std::string_view key) const {
        return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
    }

    std::optional<value_ref> get(std::string_view key) const {
        if (std::find(asked_.begin(), asked_.end(), key) == asked_.end()) asked_.emplace_back(key);
        auto it = entries_.find(std::string(key));
        if (it == entries_.end()) return std::nullopt;
        const YAML::Node& value = it->second.value;
        YAML::Mark mark = value.IsNull() ? it->second.key_mark : value.Mark();
        return value_ref{ctx_, value, child(key), mark};
    }

    value_ref require(std::string_view key) const {
        if (auto v = get(key)) return *v;
        ctx_->fail(where_, child(key), "required key is missing");
    }

    // The position of key's key, or of this section when it is absent.
    YAML::Mark key_mark(std::string_view key) const {
        auto it = entries_.find(std::string(key));
        return it == entries_.end() ? where_ : it->second.key_mark;
    }

    // A nested section; absent means all defaults. The caller finish()es it
    // (or use read()).
    section sub(std::string_view key) const {
        auto v = get(key);
        return section(*ctx_, v ? v->node : YAML::Node(), child(key), key_mark(key));
    }

    void string(std::string_view key, std::string& out) const {
        if (auto v = get(key)) out = v->text();
    }

    // A string that must not be empty.
    void name(std::string_view key, std::string& out) const {
        if (auto v = get(key)) {
            out = v->text();
            if (out.empty()) v->fail("must not be empty");
        }
    }

    void boolean(std::string_view key, bool& out) const {
        if (auto v = get(key)) out = v->check(parse_bool(v->text()));
    }

    void time(std::string_view key, duration& out, duration min, duration max) const {
        if (auto v = get(key)) {
            std::string text = v->text();
            duration d = v->check(parse_duration(text));
            if (d < min || d > max)
                v->fail(fmt::format("{} is out of range: must be from {} to {}", text, format_duration(min),
                                    format_duration(max)));
            out = d;
        }
    }

    void size(std::string_view key, std::size_t& out, std::size_t min, std::size_t max) const {
        if (auto v = get(key)) {
            std::string text = v->text();
            std::size_t n = v->check(parse_size(text));
            if (n < min || n > max)
                v->fail(fmt::format("{} is out of range: must be from {} to {}", text, format_size(min),
                                    format_size(max)));
            out = n;
        }
    }

    template <class T>
    void count(std::string_view key, T& out, T min, T max) const {
        if (auto v = get(key)) out = static_cast<T>(v->check(parse_unsigned(v->text(), min, max)));
    }

    void number(std::string_view key, double& out, double min, double max) const {
        if (auto v = get(key)) out = v->check(parse_number(v->text(), min, max));
    }

    void address(std::string_view key, endpoint& out) const {
        if (auto v = get(key)) out = v->check(parse_endpoint(v->text()));
    }

    void url(std::string_view key, base_url& out) const {
        if (auto v = get(key)) out = v->check(parse_base_url(v->text()));
    }

    template <class E>
    void choice(std::string_view key, E& out,
                std::initializer_list<std::pair<std::string_view, E>> choices) const {
        auto v = get(key);
        if (!v) return;
        std::string text = v->text();
        std::vector<std::string_view> names;
        for (const auto& [name, value] : choices) {
            if (name == text) {
                out = value;
                return;
            }
            names.push_back(name);
        }
        v->fail(fmt::format("must be one of {} (got \"{}\")", join(names), text));
    }

    void strings(std::string_view key, std::vector<std::string>& out) const {
        auto v = get(key);
        if (!v) return;
        if (v->node.IsNull()) {
            out.clear();
            return;
        }
        if (!v->node.IsSequence()) v->fail(fmt::format("expected a list, got {}", kind_name(v->node)));
        out.clear();
        for (std::size_t i = 0; i < v->node.size(); ++i) {
            YAML::Node item = v->node[i];
            value_ref ref{ctx_, item, fmt::format("{}[{}]", v->path, i),
                          item.IsNull() ? v->mark : item.Mark()};
            std::string text = ref.text();
            if (text.empty()) ref.fail("must not be empty");
            out.push_back(std::move(text));
        }
    }

private:
    struct entry {
        YAML::Mark key_mark;
        YAML::Node value;
    };

    const context* ctx_;
    std::string path_;
    YAML::Mark where_;
    std::map<std::string, entry, std::less<>> entries_;
    std::vector<std::string> order_;          // the file's keys, in its order
    mutable std::vector<std::string> asked_;  // the keys readers asked for, in their order
};

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// Route names go into tags and stats, query names are file names under
// database.queries_dir: keep both to a safe alphabet.
void check_plain_name(const value_ref& v, const std::string& text) {
    if (text.empty()) v.fail("must not be empty");
    for (char c : text) {
        if (!is_name_char(c))
            v.fail(fmt::format("\"{}\" must be made of letters, digits, '_' and '-'", text));
    }
}

server_config read_server(const section& s) {
    server_config c;
    s.address("listen", c.listen);
    s.count("threads", c.threads, 0u, 1024u);
    s.size("max_header_bytes", c.max_header_bytes, 1 * kib, 1 * mib);
    s.size("max_body_bytes", c.max_body_bytes, 0, 4 * gib);
    s.time("header_timeout", c.header_timeout, 1ms, 1h);
    s.time("idle_timeout", c.idle_timeout, 1ms, one_day);
    s.time("body_timeout", c.body_timeout, 1ms, one_day);
    s.time("drain_timeout", c.drain_timeout, 0ms, 1h);
    s.time("drain_idle_grace", c.drain_idle_grace, 0ms, 1h);
    s.count<std::size_t>("max_pipelined", c.max_pipelined, 1, 1024);
    s.count<std::size_t>("max_connections", c.max_connections, 1, 1'000'000);
    return c;
}

admin_config read_admin(const section& s) {
    admin_config c;
    s.address("listen", c.listen);
    s.boolean("enabled", c.enabled);
    s.string("token", c.token);
    return c;
}

upstream_config read_upstream(const section& s) {
    upstream_config c;
    auto url = s.require("url");
    c.url = url.check(parse_base_url(url.text()));
    s.count<std::size_t>("max_connections", c.max_connections, 1, 100'000);
    if (auto idle = s.get("max_idle_connections")) {
        s.count<std::size_t>("max_idle_connections", c.max_idle_connections, 0, 100'000);
        if (c.max_idle_connections > c.max_connections)
            idle->fail(fmt::format("must not exceed upstream.max_connections ({})", c.max_connections));
    } else {
        // The default (64) is only an upper bound: fewer connections keep fewer idle.
        c.max_idle_connections = std::min(c.max_idle_connections, c.max_connections);
    }
    s.time("connect_timeout", c.connect_timeout, 1ms, 1h);
    s.time("response_timeout", c.response_timeout, 1ms, one_day);
    s.time("idle_timeout", c.idle_timeout, 1ms, one_day);
    s.time("health_check_interval", c.health_check_interval, 0ms, 1h);
    return c;
}

auth_config read_auth(const section& s) {
    auth_config c;
    s.string("jwt_secret", c.jwt_secret);
    s.time("leeway", c.leeway, 0ms, 1h);
    s.count<std::size_t>("token_cache_entries", c.token_cache_entries, 0, 10'000'000);
    return c;
}

route_config read_route(const section& s) {
    route_config r;
    auto name = s.require("name");
    r.name = name.text();
    check_plain_name(name, r.name);
    auto path = s.require("path");
    r.path = path.text();
    if (!r.path.starts_with('/')) path.fail(fmt::format("\"{}\" must start with '/'", r.path));
    if (r.path.find_first_of("?# ") != std::string::npos)
        path.fail(fmt::format("\"{}\" must be a bare path, without query, fragment or spaces", r.path));
    s.strings("query_params", r.query_params);
    s.time("ttl", r.ttl, 0ms, one_day);
    s.time("stale_while_revalidate", r.stale_while_revalidate, 0ms, one_day);
    s.time("stale_if_error", r.stale_if_error, 0ms, one_week);
    s.boolean("utc_day_bound", r.utc_day_bound);
    s.choice("fill", r.fill, {{"upstream", fill_kind::upstream}, {"postgres", fill_kind::postgres}});
    if (auto query = s.get("query")) {
        r.query = query->text();
        check_plain_name(*query, r.query);
    } else if (r.fill == fill_kind::postgres) {
        s.require("query");  // throws: "required key is missing" at the route
    }
    // The fill's SQL is given the user alone: parameters in the key would
    // split the cache into copies of the same answer.
    if (auto params = s.get("query_params"); params && r.fill == fill_kind::postgres)
        params->fail(
            "not allowed with fill: postgres (its query is given only the user; remove the key, or use "
            "fill: upstream)");
    s.boolean("enrich_agents", r.enrich_agents);
    s.count<std::size_t>("max_waiters", r.max_waiters, 0, 1'000'000);
    s.time("wait_timeout", r.wait_timeout, 1ms, 1h);
    // `key` (read already) is at least `floor_key`'s value: raised to it when
    // not given, refused when given shorter.
    auto at_least = [&s](const char* key, duration& value, const char* floor_key, duration floor,
                         std::string_view why) {
        auto given = s.get(key);
        if (!given)
            value = std::max(value, floor);
        else if (value < floor)
            given->fail(fmt::format("{} ({} ms) must not be shorter than {} ({} ms){}", key, value.count(),
                                    floor_key, floor.count(), why));
    };
    s.time("fill_timeout", r.fill_timeout, 1ms, 1h);
    at_least("fill_timeout", r.fill_timeout, "wait_timeout", r.wait_timeout, ": a fill outlives its waiters");
    s.time("failure_backoff", r.failure_backoff, 0ms, 1h);
    s.time("failure_backoff_max", r.failure_backoff_max, 0ms, 1h);
    at_least("failure_backoff_max", r.failure_backoff_max, "failure_backoff", r.failure_backoff, "");
    s.time("degraded_ttl", r.degraded_ttl, 0ms, one_day);
    return r;
}

midnight_refill_config read_midnight_refill(const section& s) {
    midnight_refill_config c;
    s.boolean("enabled", c.enabled);
    s.time("recent", c.recent, 1ms, one_day);
    s.count<std::size_t>("max_entries", c.max_entries, 0, 10'000'000);
    s.count<std::size_t>("concurrency", c.concurrency, 1, 1024);
    s.time("spread", c.spread, 0ms, 1h);
    return c;
}

warmup_config read_warmup(const section& s) {
    warmup_config c;
    s.boolean("enabled", c.enabled);
    s.count<std::size_t>("users", c.users, 1, 1'000'000);
    s.time("lookback", c.lookback, 1s, 30 * one_day);
    s.count<std::size_t>("concurrency", c.concurrency, 1, 256);
    s.time("ready_timeout", c.ready_timeout, 0ms, 1h);
    return c;
}

cache_config read_cache(const context& ctx, const section& s) {
    cache_config c;
    s.boolean("enabled", c.enabled);
    s.size("max_bytes", c.max_bytes, 0, 1024 * gib);
    s.count("shards", c.shards, 1u, 1024u);
    c.midnight_refill = s.read("midnight_refill", read_midnight_refill);
    c.warmup = s.read("warmup", read_warmup);
    auto routes = s.get("routes");
    if (!routes || routes->node.IsNull()) return c;
    if (!routes->node.IsSequence())
        routes->fail(fmt::format("expected a list of routes, got {}", kind_name(routes->node)));

    // First route (by index) for each name and path, for duplicate messages.
    std::map<std::string, std::size_t> names;
    std::map<std::string, std::size_t> paths;
    for (std::size_t i = 0; i < routes->node.size(); ++i) {
        YAML::Node item = routes->node[i];
        std::string path = fmt::format("{}[{}]", routes->path, i);
        if (!item.IsMap())
            ctx.fail(item.IsNull() ? routes->mark : item.Mark(), path,
                     fmt::format("expected a route (a map), got {}", kind_name(item)));
        section route(ctx, item, path, item.Mark());
        route_config r = read_route(route);
        route.finish();
        if (auto [it, fresh] = names.emplace(r.name, i); !fresh)
            route.get("name")->fail(
                fmt::format("duplicate route name \"{}\" (also {}[{}])", r.name, routes->path, it->second));
        if (auto [it, fresh] = paths.emplace(r.path, i); !fresh)
            route.get("path")->fail(
                fmt::format("duplicate route path \"{}\" (also {}[{}])", r.path, routes->path, it->second));
        c.routes.push_back(std::move(r));
    }
    return c;
}

database_config read_database(const section& s) {
    database_config c;
    s.string("url", c.url);
    s.count<std::size_t>("pool_size", c.pool_size, 1, 1000);
    s.time("connect_timeout", c.connect_timeout, 1ms, 1h);
    s.time("query_timeout", c.query_timeout, 1ms, 1h);
    s.time("reconnect_backoff_max", c.reconnect_backoff_max, 1ms, 1h);
    s.time("reconnect_wait", c.reconnect_wait, 0ms, 1h);
    s.boolean("migrate_on_start", c.migrate_on_start);
    s.time("refresh_interval", c.refresh_interval, 0ms, one_week);
    s.count<std::uint64_t>("refresh_marked_users", c.refresh_marked_users, 1, 1'000'000'000);
    s.name("queries_dir", c.queries_dir);
    s.name("migrations_dir", c.migrations_dir);
    if (auto channel = s.get("notify_channel")) {
        // Used unquoted in LISTEN: a plain lower-case SQL identifier.
        c.notify_channel = channel->text();
        bool ok = !c.notify_channel.empty() && c.notify_channel.size() <= 63 &&
                  !(c.notify_channel[0] >= '0' && c.notify_channel[0] <= '9');
        for (char ch : c.notify_channel)
            ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_');
        if (!ok)
            channel->fail(fmt::format("\"{}\" must be a lower-case SQL identifier (a-z, 0-9, _; at most 63)",
                                      c.notify_channel));
    }
    s.boolean("listen_notify", c.listen_notify);
    s.time("listen_ping_interval", c.listen_ping_interval, 100ms, 1h);
    s.time("heartbeat_interval", c.heartbeat_interval, 0ms, 1h);
    // Shorter than a round trip under load it would declare a healthy channel dead.
    if (c.heartbeat_interval != 0ms && c.heartbeat_interval < 10ms)
        s.get("heartbeat_interval")
            ->fail(fmt::format("{} is out of range: must be 0 (off) or from 10ms to 1h",
                               format_duration(c.heartbeat_interval)));
    // Given up only after freshness was (two intervals); absent, it grows with
    // a long interval.
    s.time("heartbeat_timeout", c.heartbeat_timeout, 20ms, 1h);
    if (auto timeout = s.get("heartbeat_timeout");
        timeout && c.heartbeat_interval != 0ms && c.heartbeat_timeout < 2 * c.heartbeat_interval)
        timeout->fail(fmt::format("{} must be at least two heartbeat_intervals ({})",
                                  format_duration(c.heartbeat_timeout),
                                  format_duration(2 * c.heartbeat_interval)));
    else if (!timeout)
        c.heartbeat_timeout = std::max(c.heartbeat_timeout, 3 * c.heartbeat_interval);
    return c;
}

retry_profile read_retry(const section& s, retry_profile c) {
    s.count("attempts", c.attempts, 1u, 100u);
    s.time("base", c.base, 0ms, 1h);
    s.time("max", c.max, 0ms, 1h);
    s.number("multiplier", c.multiplier, 1.0, 100.0);
    if (c.max < c.base) {
        auto at = s.get("max") ? *s.get("max") : *s.get("base");
        at.fail(fmt::format("max ({}) must not be below base ({})", format_duration(c.max),
                            format_duration(c.base)));
    }
    return c;
}

breaker_config read_breaker(const section& s) {
    breaker_config c;
    s.count("consecutive_failures", c.consecutive_failures, 1u, 1'000'000u);
    s.number("failure_rate", c.failure_rate, 0.0, 1.0);
    s.time("window", c.window, 1ms, 1h);
    s.count("min_requests", c.min_requests, 1u, 1'000'000u);
    s.time("cool_down", c.cool_down, 1ms, 1h);
    return c;
}

external_config read_external(const section& s) {
    external_config c;
    c.url = *parse_base_url("https://api.elevenlabs.io");
    s.url("url", c.url);
    s.string("api_key", c.api_key);
    s.boolean("verify_tls", c.verify_tls);
    s.count<std::size_t>("max_connections", c.max_connections, 1, 100'000);
    s.count<std::size_t>("concurrency", c.concurrency, 1, 1024);
    s.time("try_timeout", c.try_timeout, 1ms, 1h);
    s.time("deadline", c.deadline, 1ms, 1h);
    c.foreground = s.read("foreground", [&](const section& f) { return read_retry(f, c.foreground); });
    c.background = s.read("background", [&](const section& b) { return read_retry(b, c.background); });
    c.breaker = s.read("breaker", read_breaker);
    s.time("config_ttl", c.config_ttl, 0ms, one_week);
    s.time("max_stale", c.max_stale, 0ms, 30 * one_day);
    s.count<std::size_t>("config_cache_entries", c.config_cache_entries, 1, 10'000'000);
    return c;
}

l2_config read_l2(const section& s) {
    l2_config c;
    if (auto url = s.get("url"); url && !url->text().empty()) {
        c.url = url->check(parse_redis_url(url->text()));
        c.enabled = true;
    }
    s.count<std::size_t>("connections", c.connections, 1, 64);
    s.time("op_timeout", c.op_timeout, 1ms, 10s);
    s.time("connect_timeout", c.connect_timeout, 1ms, 1min);
    if (auto prefix = s.get("key_prefix")) {
        c.key_prefix = prefix->text();
        // Keys are plain bytes to Redis, but a space or control character
        // in a prefix is a typo more often than a choice.
        for (char ch : c.key_prefix)
            if (static_cast<unsigned char>(ch) <= ' ')
                prefix->fail(fmt::format("\"{}\" must not hold spaces or control characters", c.key_prefix));
    }
    s.size("max_value_bytes", c.max_value_bytes, 1024, 512 * 1024 * 1024);
    s.count("breaker_failures", c.breaker_failures, 1u, 1'000'000u);
    s.time("breaker_open_for", c.breaker_open_for, 1ms, 1h);
    s.time("fill_lock_wait", c.fill_lock_wait, 0ms, 10s);
    s.time("fill_lock_ttl", c.fill_lock_ttl, 1ms, 1min);
    return c;
}

log_config read_log(const section& s) {
    log_config c;
    if (auto level = s.get("level")) {
        std::string text = level->text();
        if (text != "debug" && text != "info" && text != "warn" && text != "error")
            level->fail(fmt::format("must be one of debug, info, warn, error (got \"{}\")", text));
        c.level = text;
    }
    s.boolean("access_log", c.access_log);
    if (auto key = s.get("user_hash_key")) {
        std::string text = key->text();
        if (!text.empty() && text.size() < 16)
            key->fail(fmt::format("must be empty (a random key) or at least 16 characters (got {})", text.size()));
        c.user_hash_key = text;
    }
    return c;
}

// Where each document of a YAML stream starts and where its first node is,
// from the parser's events (no nodes built).
class document_marks final : public YAML::EventHandler {
public:
    struct document {
        YAML::Mark start;
        std::optional<YAML::Mark> node;
    };
    std::vector<document> documents;

    void OnDocumentStart(const YAML::Mark& mark) override { documents.push_back({mark, std::nullopt}); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
    void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override {
        node(mark);
    }
    void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
        node(mark);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
        node(mark);
    }
    void OnMapEnd() override {}

private:
    void node(const YAML::Mark& mark) {
        if (!documents.empty() && !documents.back().node) documents.back().node = mark;
    }
};

// The file's one document (null when it has none). Not YAML::LoadAll():
// yaml-cpp 0.7 reads a token that no rule consumes (a ',' outside a flow
// collection: ",", "a:\n  ,") as an empty document without consuming it,
// and LoadAll() then loops for ever, allocating (jbeder/yaml-cpp#1040,
// fixed after 0.7; found by test/fuzz/conf_loader.cpp). The documents are
// counted from the parser's events first, at most three: a document that
// starts where the previous one did is that stuck token.
YAML::Node read_document(const context& ctx, const std::string& text) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    document_marks marks;
    while (marks.documents.size() < 3 && parser.HandleNextDocument(marks)) {
        const auto& docs = marks.documents;
        if (docs.size() >= 2 && docs[docs.size() - 1].start.pos == docs[docs.size() - 2].start.pos) {
            const auto& at = docs.back().start;
            const char c = at.pos >= 0 && static_cast<std::size_t>(at.pos) < text.size() ? text[at.pos] : '?';
            ctx.fail(at, "", fmt::format("invalid YAML: unexpected '{}'", c));
        }
    }
    // A second document would be silently ignored: refuse it.
    if (marks.documents.size() > 1) {
        const auto& second = marks.documents[1];
        ctx.fail(second.node.value_or(second.start), "", "the file must hold one YAML document, not several");
    }
    return YAML::Load(text);
}

}  // namespace

config load_string(std::string_view yaml, std::string_view file_name, const env_lookup& env) {
    context ctx{std::string(file_name), env};
    YAML::Node root;
    try {
        root = read_document(ctx, std::string(yaml));
    } catch (const YAML::Exception& e) {
        ctx.fail(e.mark, "", fmt::format("invalid YAML: {}", e.msg));
    }

    YAML::Mark top;  // line 0, column 0: the start of the file
    top.line = 0;
    top.column = 0;
    if (root.IsDefined() && !root.IsNull() && !root.IsMap())
        ctx.fail(root.Mark(), "",
                 fmt::format("the configuration must be a map of sections, got {}", kind_name(root)));
    section s(ctx, root, "", top);

    config cfg;
    cfg.source_file = ctx.file;
    section server = s.sub("server");
    cfg.server = read_server(server);
    server.finish();
    section admin = s.sub("admin");
    cfg.admin = read_admin(admin);
    admin.finish();
    if (cfg.admin.enabled && cfg.admin.listen.port != 0 && cfg.admin.listen.port == cfg.server.listen.port &&
        cfg.admin.listen.host == cfg.server.listen.host) {
        std::string where = fmt::format("{}:{}", cfg.admin.listen.host, cfg.admin.listen.port);
        if (auto listen = admin.get("listen")) listen->fail(where + " is also server.listen");
        // admin.listen is its default: point at the server.listen that collides with it.
        server.get("listen")->fail(where + " is also admin.listen (its default)");
    }
    cfg.upstream = s.read("upstream", read_upstream);
    cfg.auth = s.read("auth", read_auth);
    cfg.cache = s.read("cache", [&](const section& c) { return read_cache(ctx, c); });
    cfg.database = s.read("database", read_database);
    cfg.external = s.read("external", read_external);
    cfg.l2 = s.read("l2", read_l2);
    cfg.log = s.read("log", read_log);
    s.finish();
    return cfg;
}

config load_file(const std::string& path, const env_lookup& env) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw error(path, 0, 0, "", "cannot read the configuration file: it is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw error(path, 0, 0, "",
                    fmt::format("cannot read the configuration file: {}", std::strerror(errno)));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw error(path, 0, 0, "", "cannot read the configuration file");
    return load_string(text.str(), path, env);
}

config load_file(const std::string& path) {
    return load_file(path, process_environment());
}

}  // namespace sidecache::conf
