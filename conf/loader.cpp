#include "conf/loader.hpp"

#include "conf/values.hpp"

#include <fmt/format.h>
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

    [[noreturn]] void fail(const YAML::Mark& mark, const std::string& path, const std::string& message) const {
        // yaml-cpp marks are 0-based, and -1 for an empty document.
        int line = mark.line >= 0 ? mark.line + 1 : 1;
        int column = mark.column >= 0 ? mark.column + 1 : 1;
        throw error(file, line, column, path, message);
    }
};

std::string_view kind_name(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Map: return "a map";
        case YAML::NodeType::Sequence: return "a list";
        case YAML::NodeType::Scalar: return "a single value";
        default: return "nothing";
    }
}

std::string join(const std::vector<std::string_view>& words) {
    std::string out;
    for (auto w : words) {
        if (!out.empty()) out += ", ";
        out += w;
    }
    return out;
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

// A YAML map read as one of the config structs: every key must be one of
// `keys`, at most once. An absent or empty section reads as all defaults.
class section {
public:
    // where: the position of the section's own key, for "required key is
    // missing" and for a section that is not a map.
    section(const context& ctx, const YAML::Node& node, std::string path, YAML::Mark where,
            std::initializer_list<std::string_view> keys)
        : ctx_(&ctx), path_(std::move(path)), where_(where), keys_(keys) {
        if (!node.IsDefined() || node.IsNull()) return;
        if (!node.IsMap()) ctx.fail(node.Mark(), path_, fmt::format("expected a map of keys, got {}", kind_name(node)));
        for (auto it = node.begin(); it != node.end(); ++it) {
            YAML::Node key = it->first;  // a copy: it-> is a temporary proxy
            if (!key.IsScalar()) ctx.fail(key.Mark(), path_, "a key must be a plain name");
            std::string name = key.Scalar();
            if (std::find(keys_.begin(), keys_.end(), name) == keys_.end())
                ctx.fail(key.Mark(), child(name), fmt::format("unknown key (expected one of: {})", join(keys_)));
            if (auto seen = entries_.find(name); seen != entries_.end())
                ctx.fail(key.Mark(), child(name), fmt::format("duplicate key (first at line {})", seen->second.key_mark.line + 1));
            entries_.emplace(name, entry{key.Mark(), it->second});
        }
    }

    const std::string& path() const { return path_; }

    std::string child(std::string_view key) const {
        return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
    }

    std::optional<value_ref> get(std::string_view key) const {
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

    // A nested section; absent means all defaults.
    section sub(std::string_view key, std::initializer_list<std::string_view> keys) const {
        auto v = get(key);
        return section(*ctx_, v ? v->node : YAML::Node(), child(key), key_mark(key), keys);
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
                v->fail(fmt::format("{} is out of range: must be from {} to {}", text, format_duration(min), format_duration(max)));
            out = d;
        }
    }

    void size(std::string_view key, std::size_t& out, std::size_t min, std::size_t max) const {
        if (auto v = get(key)) {
            std::string text = v->text();
            std::size_t n = v->check(parse_size(text));
            if (n < min || n > max)
                v->fail(fmt::format("{} is out of range: must be from {} to {}", text, format_size(min), format_size(max)));
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
    void choice(std::string_view key, E& out, std::initializer_list<std::pair<std::string_view, E>> choices) const {
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
            value_ref ref{ctx_, item, fmt::format("{}[{}]", v->path, i), item.IsNull() ? v->mark : item.Mark()};
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
    std::vector<std::string_view> keys_;
    std::map<std::string, entry, std::less<>> entries_;
};

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// Route names go into tags and stats, query names are file names under
// database.queries_dir: keep both to a safe alphabet.
void check_plain_name(const value_ref& v, const std::string& text) {
    if (text.empty()) v.fail("must not be empty");
    for (char c : text) {
        if (!is_name_char(c)) v.fail(fmt::format("\"{}\" must be made of letters, digits, '_' and '-'", text));
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
    s.count<std::size_t>("max_pipelined", c.max_pipelined, 1, 1024);
    s.count<std::size_t>("max_connections", c.max_connections, 1, 1'000'000);
    return c;
}

admin_config read_admin(const section& s) {
    admin_config c;
    s.address("listen", c.listen);
    s.boolean("enabled", c.enabled);
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
    s.boolean("enrich_agents", r.enrich_agents);
    s.count<std::size_t>("max_waiters", r.max_waiters, 0, 1'000'000);
    s.time("wait_timeout", r.wait_timeout, 1ms, 1h);
    s.time("degraded_ttl", r.degraded_ttl, 0ms, one_day);
    return r;
}

cache_config read_cache(const context& ctx, const section& s) {
    cache_config c;
    s.boolean("enabled", c.enabled);
    s.size("max_bytes", c.max_bytes, 0, 1024 * gib);
    s.count("shards", c.shards, 1u, 1024u);
    auto routes = s.get("routes");
    if (!routes || routes->node.IsNull()) return c;
    if (!routes->node.IsSequence()) routes->fail(fmt::format("expected a list of routes, got {}", kind_name(routes->node)));

    // First route (by index) for each name and path, for duplicate messages.
    std::map<std::string, std::size_t> names;
    std::map<std::string, std::size_t> paths;
    for (std::size_t i = 0; i < routes->node.size(); ++i) {
        YAML::Node item = routes->node[i];
        std::string path = fmt::format("{}[{}]", routes->path, i);
        if (!item.IsMap()) ctx.fail(item.IsNull() ? routes->mark : item.Mark(), path, fmt::format("expected a route (a map), got {}", kind_name(item)));
        section route(ctx, item, path, item.Mark(),
                      {"name", "path", "query_params", "ttl", "stale_while_revalidate", "stale_if_error",
                       "utc_day_bound", "fill", "query", "enrich_agents", "max_waiters", "wait_timeout",
                       "degraded_ttl"});
        route_config r = read_route(route);
        if (auto [it, fresh] = names.emplace(r.name, i); !fresh)
            route.get("name")->fail(fmt::format("duplicate route name \"{}\" (also {}[{}])", r.name, routes->path, it->second));
        if (auto [it, fresh] = paths.emplace(r.path, i); !fresh)
            route.get("path")->fail(fmt::format("duplicate route path \"{}\" (also {}[{}])", r.path, routes->path, it->second));
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
    s.boolean("migrate_on_start", c.migrate_on_start);
    s.time("refresh_interval", c.refresh_interval, 0ms, one_week);
    s.name("queries_dir", c.queries_dir);
    s.name("migrations_dir", c.migrations_dir);
    if (auto channel = s.get("notify_channel")) {
        // Used unquoted in LISTEN: a plain lower-case SQL identifier.
        c.notify_channel = channel->text();
        bool ok = !c.notify_channel.empty() && c.notify_channel.size() <= 63 &&
                  !(c.notify_channel[0] >= '0' && c.notify_channel[0] <= '9');
        for (char ch : c.notify_channel) ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_');
        if (!ok)
            channel->fail(fmt::format("\"{}\" must be a lower-case SQL identifier (a-z, 0-9, _; at most 63)", c.notify_channel));
    }
    s.boolean("listen_notify", c.listen_notify);
    s.time("listen_ping_interval", c.listen_ping_interval, 100ms, 1h);
    return c;
}

retry_profile read_retry(const section& s, retry_profile c) {
    s.count("attempts", c.attempts, 1u, 100u);
    s.time("base", c.base, 0ms, 1h);
    s.time("max", c.max, 0ms, 1h);
    s.number("multiplier", c.multiplier, 1.0, 100.0);
    if (c.max < c.base) {
        auto at = s.get("max") ? *s.get("max") : *s.get("base");
        at.fail(fmt::format("max ({}) must not be below base ({})", format_duration(c.max), format_duration(c.base)));
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
    std::initializer_list<std::string_view> retry_keys{"attempts", "base", "max", "multiplier"};
    c.foreground = read_retry(s.sub("foreground", retry_keys), c.foreground);
    c.background = read_retry(s.sub("background", retry_keys), c.background);
    c.breaker = read_breaker(s.sub("breaker", {"consecutive_failures", "failure_rate", "window", "min_requests", "cool_down"}));
    s.time("config_ttl", c.config_ttl, 0ms, one_week);
    s.time("max_stale", c.max_stale, 0ms, 30 * one_day);
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
    return c;
}

}  // namespace

config load_string(std::string_view yaml, std::string_view file_name, const env_lookup& env) {
    context ctx{std::string(file_name), env};
    YAML::Node root;
    try {
        std::vector<YAML::Node> documents = YAML::LoadAll(std::string(yaml));
        // A second document would be silently ignored: refuse it.
        if (documents.size() > 1) ctx.fail(documents[1].Mark(), "", "the file must hold one YAML document, not several");
        if (!documents.empty()) root = documents.front();
    } catch (const YAML::Exception& e) {
        ctx.fail(e.mark, "", fmt::format("invalid YAML: {}", e.msg));
    }

    YAML::Mark top;  // line 0, column 0: the start of the file
    top.line = 0;
    top.column = 0;
    if (root.IsDefined() && !root.IsNull() && !root.IsMap())
        ctx.fail(root.Mark(), "", fmt::format("the configuration must be a map of sections, got {}", kind_name(root)));
    section s(ctx, root, "", top,
              {"server", "admin", "upstream", "auth", "cache", "database", "external", "log"});

    config cfg;
    cfg.source_file = ctx.file;
    section server = s.sub("server", {"listen", "threads", "max_header_bytes", "max_body_bytes", "header_timeout",
                                      "idle_timeout", "body_timeout", "drain_timeout", "max_pipelined",
                                      "max_connections"});
    cfg.server = read_server(server);
    section admin = s.sub("admin", {"listen", "enabled"});
    cfg.admin = read_admin(admin);
    if (cfg.admin.enabled && cfg.admin.listen.port != 0 && cfg.admin.listen.port == cfg.server.listen.port &&
        cfg.admin.listen.host == cfg.server.listen.host) {
        std::string where = fmt::format("{}:{}", cfg.admin.listen.host, cfg.admin.listen.port);
        if (auto listen = admin.get("listen")) listen->fail(where + " is also server.listen");
        // admin.listen is its default: point at the server.listen that collides with it.
        server.get("listen")->fail(where + " is also admin.listen (its default)");
    }
    cfg.upstream = read_upstream(s.sub("upstream", {"url", "max_connections", "max_idle_connections",
                                                   "connect_timeout", "response_timeout", "idle_timeout"}));
    cfg.auth = read_auth(s.sub("auth", {"jwt_secret", "leeway", "token_cache_entries"}));
    cfg.cache = read_cache(ctx, s.sub("cache", {"enabled", "max_bytes", "shards", "routes"}));
    cfg.database = read_database(s.sub("database", {"url", "pool_size", "connect_timeout", "query_timeout",
                                                   "reconnect_backoff_max", "migrate_on_start", "refresh_interval",
                                                   "queries_dir", "migrations_dir", "notify_channel", "listen_notify",
                                                   "listen_ping_interval"}));
    cfg.external = read_external(s.sub("external", {"url", "api_key", "verify_tls", "max_connections", "concurrency",
                                                   "try_timeout", "deadline", "foreground", "background", "breaker",
                                                   "config_ttl", "max_stale"}));
    cfg.log = read_log(s.sub("log", {"level", "access_log"}));
    return cfg;
}

config load_file(const std::string& path, const env_lookup& env) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw error(path, 0, 0, "", "cannot read the configuration file: it is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw error(path, 0, 0, "", fmt::format("cannot read the configuration file: {}", std::strerror(errno)));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw error(path, 0, 0, "", "cannot read the configuration file");
    return load_string(text.str(), path, env);
}

config load_file(const std::string& path) { return load_file(path, process_environment()); }

}  // namespace sidecache::conf
