// conf::load_string / load_file: the YAML layout, defaults, ${NAME} expansion,
// and every kind of error with its exact "FILE:LINE:COL: key.path: what" text.

#include "conf/loader.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <vector>

using namespace sidecache::conf;
using namespace std::chrono_literals;

namespace {

env_lookup fake_env(std::map<std::string, std::string, std::less<>> vars = {}) {
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

// A known-good file; each SECTION below changes one line of it.
const std::string good =
    "server:\n"                              // 1
    "  listen: 127.0.0.1:8080\n"             // 2
    "  threads: 2\n"                         // 3
    "upstream:\n"                            // 4
    "  url: http://127.0.0.1:3000\n"         // 5
    "cache:\n"                               // 6
    "  routes:\n"                            // 7
    "    - name: overview\n"                 // 8
    "      path: /api/dashboard/overview\n"  // 9
    "      fill: postgres\n"                 // 10
    "      query: overview\n"                // 11
    "    - name: agents\n"                   // 12
    "      path: /api/agents\n"              // 13
    "      fill: postgres\n"                 // 14
    "      query: agents\n"                  // 15
    "      enrich_agents: true\n"            // 16
    "      ttl: 10s\n";                      // 17

// good with its line `line` (1-based) replaced by text.
std::string with_line(int line, const std::string& text) {
    std::istringstream in(good);
    std::string out;
    std::string current;
    for (int n = 1; std::getline(in, current); ++n) out += (n == line ? text : current) + "\n";
    return out;
}

// The message load_string throws for yaml, or "loaded" if it loads.
std::string error_of(const std::string& yaml, const env_lookup& env = fake_env()) {
    try {
        load_string(yaml, "test.yaml", env);
    } catch (const error& e) {
        return e.what();
    }
    return "loaded";
}

}  // namespace

TEST_CASE("the known-good fixture loads as written", "[unit]") {
    config cfg = load_string(good, "test.yaml", fake_env());
    CHECK(cfg.source_file == "test.yaml");
    CHECK(cfg.server.listen.host == "127.0.0.1");
    CHECK(cfg.server.listen.port == 8080);
    CHECK(cfg.server.threads == 2);
    CHECK(cfg.upstream.url.host == "127.0.0.1");
    CHECK(cfg.upstream.url.port == 3000);
    REQUIRE(cfg.cache.routes.size() == 2);
    CHECK(cfg.cache.routes[0].name == "overview");
    CHECK(cfg.cache.routes[0].path == "/api/dashboard/overview");
    CHECK(cfg.cache.routes[0].fill == fill_kind::postgres);
    CHECK(cfg.cache.routes[0].query == "overview");
    CHECK(cfg.cache.routes[0].ttl == 30s);  // the default
    CHECK_FALSE(cfg.cache.routes[0].enrich_agents);
    CHECK(cfg.cache.routes[1].name == "agents");
    CHECK(cfg.cache.routes[1].enrich_agents);
    CHECK(cfg.cache.routes[1].ttl == 10s);
}

TEST_CASE("absent keys take the defaults of conf/config.hpp", "[unit]") {
    config cfg = load_string("upstream:\n  url: http://legacy\n", "min.yaml", fake_env());
    CHECK(cfg.upstream.url.port == 80);
    CHECK(cfg.server.listen.port == 8080);
    CHECK(cfg.server.max_header_bytes == 16 * 1024);
    CHECK(cfg.admin.listen.port == 9901);
    CHECK(cfg.cache.routes.empty());
    CHECK(cfg.database.url.empty());
    CHECK(cfg.external.url.scheme == "https");
    CHECK(cfg.external.url.host == "api.elevenlabs.io");
    CHECK(cfg.external.url.port == 443);
    CHECK(cfg.external.background.base == 1s);
    CHECK(cfg.log.level == "info");

    // An empty section is all defaults too.
    config empty_sections =
        load_string("server:\nupstream:\n  url: http://legacy\nlog:\n", "min.yaml", fake_env());
    CHECK(empty_sections.server.listen.port == 8080);
}

TEST_CASE("${NAME} expands in values before they are parsed", "[unit]") {
    std::string yaml = with_line(5, "  url: ${LEGACY_URL:-http://127.0.0.1:3000}");
    CHECK(load_string(yaml, "test.yaml", fake_env()).upstream.url.port == 3000);
    config cfg =
        load_string(yaml, "test.yaml", fake_env({{"LEGACY_URL", "https://legacy.internal:4443/app/"}}));
    CHECK(cfg.upstream.url.scheme == "https");
    CHECK(cfg.upstream.url.host == "legacy.internal");
    CHECK(cfg.upstream.url.port == 4443);
    CHECK(cfg.upstream.url.path == "/app");

    // Only values are expanded: a key named like a variable is just unknown.
    CHECK(error_of(good + "${X}: 1\n", fake_env({{"X", "log"}})) ==
          "test.yaml:18:1: ${X}: unknown key (expected one of: server, admin, upstream, auth, cache, "
          "database, external, l2, log)");
}

TEST_CASE("errors name the file, line, column and key path", "[unit]") {
    SECTION("the fixture itself") {
        CHECK(error_of(good) == "loaded");
    }
    SECTION("unknown top-level key") {
        CHECK(error_of(with_line(1, "serverr:")) ==
              "test.yaml:1:1: serverr: unknown key, did you mean \"server\"? (expected one of: server, "
              "admin, upstream, auth, cache, database, "
              "external, l2, log)");
    }
    SECTION("unknown nested key") {
        CHECK(error_of(with_line(3, "  thread: 2")) ==
              "test.yaml:3:3: server.thread: unknown key, did you mean \"threads\"? (expected one of: "
              "listen, threads, max_header_bytes, "
              "max_body_bytes, header_timeout, idle_timeout, body_timeout, drain_timeout, drain_idle_grace, "
              "max_pipelined, "
              "max_connections)");
    }
    SECTION("duplicate key") {
        CHECK(error_of(with_line(3, "  listen: 127.0.0.1:9")) ==
              "test.yaml:3:3: server.listen: duplicate key (first at line 2)");
    }
    SECTION("not a whole number") {
        CHECK(error_of(with_line(3, "  threads: many")) ==
              "test.yaml:3:12: server.threads: \"many\" is not a whole number");
    }
    SECTION("integer out of range") {
        CHECK(error_of(with_line(3, "  threads: 5000")) ==
              "test.yaml:3:12: server.threads: 5000 is out of range: must be from 0 to 1024");
    }
    SECTION("a list where a value is expected") {
        CHECK(error_of(with_line(3, "  threads: [1, 2]")) ==
              "test.yaml:3:12: server.threads: expected a single value, got a list");
    }
    SECTION("a key without a value") {
        CHECK(error_of(with_line(3, "  threads:")) ==
              "test.yaml:3:3: server.threads: a value is required (write \"\" for an empty string)");
    }
    SECTION("duration out of range") {
        CHECK(error_of(with_line(3, "  header_timeout: 2h")) ==
              "test.yaml:3:19: server.header_timeout: 2h is out of range: must be from 1ms to 1h");
    }
    SECTION("size out of range") {
        CHECK(error_of(with_line(3, "  max_header_bytes: 2MiB")) ==
              "test.yaml:3:21: server.max_header_bytes: 2MiB is out of range: must be from 1KiB to 1MiB");
    }
    SECTION("upstream.health_check_interval out of range, 0 turns the probe off") {
        CHECK(error_of(with_line(5, "  url: http://127.0.0.1:3000\n  health_check_interval: 2h")) ==
              "test.yaml:6:26: upstream.health_check_interval: 2h is out of range: must be from 0 to 1h");
        auto cfg = load_string(with_line(5, "  url: http://127.0.0.1:3000\n  health_check_interval: 0"),
                               "test.yaml", fake_env());
        CHECK(cfg.upstream.health_check_interval.count() == 0);
    }
    SECTION("admin.token") {
        auto cfg = load_string(good + "admin:\n  token: ${TOKEN:-}\n", "test.yaml", fake_env({{"TOKEN", "t"}}));
        CHECK(cfg.admin.token == "t");
        CHECK(load_string(good + "admin:\n  token: ${TOKEN:-}\n", "test.yaml", fake_env()).admin.token.empty());
    }
    SECTION("bad endpoint") {
        CHECK(error_of(with_line(2, "  listen: 127.0.0.1")) ==
              "test.yaml:2:11: server.listen: \"127.0.0.1\" is not an endpoint (write host:port, e.g. "
              "127.0.0.1:8080)");
    }
    SECTION("required key missing in a present section") {
        CHECK(error_of(with_line(5, "  max_connections: 10")) ==
              "test.yaml:4:1: upstream.url: required key is missing");
    }
    SECTION("bad URL") {
        CHECK(error_of(with_line(5, "  url: ftp://x")) ==
              "test.yaml:5:8: upstream.url: \"ftp://x\" is not an http(s) base URL: the scheme must be http "
              "or https");
    }
    SECTION("unset environment variable") {
        CHECK(error_of(with_line(5, "  url: ${LEGACY}")) ==
              "test.yaml:5:8: upstream.url: environment variable LEGACY is not set (write ${LEGACY:-default} "
              "for a "
              "default)");
    }
    SECTION("route: bad duration, with the route's index") {
        CHECK(error_of(with_line(17, "      ttl: 30")) ==
              "test.yaml:17:12: cache.routes[1].ttl: \"30\" is not a duration (write 250ms, 30s, 10m, 1h or "
              "0)");
    }
    SECTION("route: duration out of range") {
        CHECK(error_of(with_line(17, "      ttl: 25h")) ==
              "test.yaml:17:12: cache.routes[1].ttl: 25h is out of range: must be from 0 to 24h");
    }
    SECTION("route: bad boolean") {
        CHECK(
            error_of(with_line(16, "      enrich_agents: yes")) ==
            "test.yaml:16:22: cache.routes[1].enrich_agents: \"yes\" is not a boolean (write true or false)");
    }
    SECTION("route: bad enum") {
        CHECK(error_of(with_line(10, "      fill: redis")) ==
              "test.yaml:10:13: cache.routes[0].fill: must be one of upstream, postgres (got \"redis\")");
    }
    SECTION("route: postgres fill without a query") {
        CHECK(error_of(with_line(11, "      ttl: 1s")) ==
              "test.yaml:8:7: cache.routes[0].query: required key is missing");
    }
    SECTION("route: upstream fill needs no query") {
        std::string yaml = with_line(11, "      ttl: 1s");
        yaml.replace(yaml.find("fill: postgres"), 14, "fill: upstream");
        CHECK(error_of(yaml) == "loaded");
    }
    SECTION("route: missing name") {
        CHECK(error_of(with_line(8, "    - ttl: 1s")) ==
              "test.yaml:8:7: cache.routes[0].name: required key is missing");
    }
    SECTION("route: name with a space") {
        CHECK(error_of(with_line(8, "    - name: over view")) ==
              "test.yaml:8:13: cache.routes[0].name: \"over view\" must be made of letters, digits, '_' and "
              "'-'");
    }
    SECTION("route: query that is not a plain name") {
        CHECK(error_of(with_line(11, "      query: ../../etc/passwd")) ==
              "test.yaml:11:14: cache.routes[0].query: \"../../etc/passwd\" must be made of letters, digits, "
              "'_' and "
              "'-'");
    }
    SECTION("route: relative path") {
        CHECK(error_of(with_line(9, "      path: api/x")) ==
              "test.yaml:9:13: cache.routes[0].path: \"api/x\" must start with '/'");
    }
    SECTION("route: path with a query") {
        CHECK(error_of(with_line(9, "      path: /api/x?y=1")) ==
              "test.yaml:9:13: cache.routes[0].path: \"/api/x?y=1\" must be a bare path, without query, "
              "fragment or spaces");
    }
    SECTION("route: duplicate name") {
        CHECK(error_of(with_line(12, "    - name: overview")) ==
              "test.yaml:12:13: cache.routes[1].name: duplicate route name \"overview\" (also "
              "cache.routes[0])");
    }
    SECTION("route: duplicate path") {
        CHECK(error_of(with_line(13, "      path: /api/dashboard/overview")) ==
              "test.yaml:13:13: cache.routes[1].path: duplicate route path \"/api/dashboard/overview\" (also "
              "cache.routes[0])");
    }
    SECTION("route: unknown key") {
        CHECK(
            error_of(with_line(17, "      tll: 10s")) ==
            "test.yaml:17:7: cache.routes[1].tll: unknown key, did you mean \"ttl\"? (expected one of: name, "
            "path, query_params, ttl, "
            "stale_while_revalidate, stale_if_error, utc_day_bound, fill, query, enrich_agents, max_waiters, "
            "wait_timeout, fill_timeout, failure_backoff, failure_backoff_max, degraded_ttl)");
    }
    SECTION("route: a fill_timeout shorter than wait_timeout") {
        CHECK(error_of(with_line(17, "      fill_timeout: 1s")) ==
              "test.yaml:17:21: cache.routes[1].fill_timeout: fill_timeout (1000 ms) must not be shorter than "
              "wait_timeout (5000 ms): a fill outlives its waiters");
    }
    SECTION("route: a failure_backoff_max shorter than failure_backoff") {
        CHECK(error_of(with_line(17, "      failure_backoff_max: 0")) ==
              "test.yaml:17:28: cache.routes[1].failure_backoff_max: failure_backoff_max (0 ms) must not be "
              "shorter than failure_backoff (1000 ms)");
    }
    SECTION("route: query_params with fill: postgres") {
        CHECK(error_of(with_line(17, "      query_params: [period]")) ==
              "test.yaml:17:21: cache.routes[1].query_params: not allowed with fill: postgres (its query is "
              "given "
              "only the user; remove the key, or use fill: upstream)");
        CHECK(error_of(with_line(17, "      query_params: []")) ==
              "test.yaml:17:21: cache.routes[1].query_params: not allowed with fill: postgres (its query is "
              "given "
              "only the user; remove the key, or use fill: upstream)");
        // The same key on an upstream route is part of its cache key.
        std::string upstream_route = with_line(14, "      fill: upstream");
        upstream_route = upstream_route.substr(0, upstream_route.find("      query: agents\n")) +
                         "      query_params: [period]\n";
        auto cfg = load_string(upstream_route, "test.yaml", fake_env());
        CHECK(cfg.cache.routes[1].query_params == std::vector<std::string>{"period"});
    }
    SECTION("route: empty query parameter") {
        CHECK(error_of(with_line(17, "      query_params: [period, \"\"]")) ==
              "test.yaml:17:30: cache.routes[1].query_params[1]: must not be empty");
    }
    SECTION("YAML syntax error") {
        CHECK(error_of(with_line(3, "  threads: [2")) ==
              "test.yaml:4:9: invalid YAML: end of sequence flow not found");
    }
}

TEST_CASE("an unknown key is refused in every section, at its line and column", "[unit]") {
    const std::string url = "upstream:\n  url: http://legacy\n";
    const std::string route = url + "cache:\n  routes:\n    - name: a\n      path: /a\n";
    auto [yaml, where, first_known] = GENERATE_REF(table<std::string, std::string, std::string>({
        {url + "bogus: 1\n", "test.yaml:3:1: bogus", "server"},
        {url + "server:\n  bogus: 1\n", "test.yaml:4:3: server.bogus", "listen"},
        {url + "admin:\n  bogus: 1\n", "test.yaml:4:3: admin.bogus", "listen"},
        {url + "  bogus: 1\n", "test.yaml:3:3: upstream.bogus", "url"},
        {url + "auth:\n  bogus: 1\n", "test.yaml:4:3: auth.bogus", "jwt_secret"},
        {url + "cache:\n  bogus: 1\n", "test.yaml:4:3: cache.bogus", "enabled"},
        {route + "      bogus: 1\n", "test.yaml:7:7: cache.routes[0].bogus", "name"},
        {url + "database:\n  bogus: 1\n", "test.yaml:4:3: database.bogus", "url"},
        {url + "external:\n  bogus: 1\n", "test.yaml:4:3: external.bogus", "url"},
        {url + "external:\n  foreground:\n    bogus: 1\n", "test.yaml:5:5: external.foreground.bogus",
         "attempts"},
        {url + "external:\n  background:\n    bogus: 1\n", "test.yaml:5:5: external.background.bogus",
         "attempts"},
        {url + "external:\n  breaker:\n    bogus: 1\n", "test.yaml:5:5: external.breaker.bogus",
         "consecutive_failures"},
        {url + "log:\n  bogus: 1\n", "test.yaml:4:3: log.bogus", "level"},
    }));
    CAPTURE(yaml);
    CHECK(error_of(yaml).rfind(where + ": unknown key (expected one of: " + first_known + ", ", 0) == 0);
}

TEST_CASE("a misspelt key suggests the key it is closest to", "[unit]") {
    const std::string url = "upstream:\n  url: http://legacy\n";
    auto [yaml, where, meant] = GENERATE_REF(table<std::string, std::string, std::string>({
        {url + "sever:\n  threads: 1\n", "test.yaml:3:1: sever", "server"},
        {url + "server:\n  max_conections: 10\n", "test.yaml:4:3: server.max_conections", "max_connections"},
        {url + "admin:\n  enabeld: false\n", "test.yaml:4:3: admin.enabeld", "enabled"},
        {url + "  conect_timeout: 1s\n", "test.yaml:3:3: upstream.conect_timeout", "connect_timeout"},
        {url + "auth:\n  jwt_secert: s\n", "test.yaml:4:3: auth.jwt_secert", "jwt_secret"},
        {url + "cache:\n  route: []\n", "test.yaml:4:3: cache.route", "routes"},
        {url + "cache:\n  routes:\n    - name: a\n      path: /a\n      stale_if_eror: 1m\n",
         "test.yaml:7:7: cache.routes[0].stale_if_eror", "stale_if_error"},
        {url + "database:\n  querytimeout: 1s\n", "test.yaml:4:3: database.querytimeout", "query_timeout"},
        {url + "external:\n  api-key: k\n", "test.yaml:4:3: external.api-key", "api_key"},
        {url + "external:\n  foreground:\n    multiplyer: 2\n",
         "test.yaml:5:5: external.foreground.multiplyer", "multiplier"},
        {url + "external:\n  breaker:\n    cooldown: 1s\n", "test.yaml:5:5: external.breaker.cooldown",
         "cool_down"},
        {url + "log:\n  acces_log: true\n", "test.yaml:4:3: log.acces_log", "access_log"},
    }));
    CAPTURE(yaml);
    CHECK(error_of(yaml).rfind(where + ": unknown key, did you mean \"" + meant + "\"? (expected one of: ",
                               0) == 0);
    // Nothing close: no guess.
    CHECK(error_of(url + "log:\n  colour: true\n") ==
          "test.yaml:4:3: log.colour: unknown key (expected one of: level, access_log, user_hash_key)");
}

TEST_CASE("errors about a file's shape", "[unit]") {
    const std::string url = "upstream:\n  url: http://legacy\n";
    CHECK(error_of("") == "test.yaml:1:1: upstream.url: required key is missing");
    CHECK(error_of("server:\n  threads: 1\n") == "test.yaml:1:1: upstream.url: required key is missing");
    CHECK(error_of("- server\n") == "test.yaml:1:1: the configuration must be a map of sections, got a list");
    CHECK(error_of(url + "server: 8080\n") ==
          "test.yaml:3:9: server: expected a map of keys, got a single value");
    CHECK(error_of(url + "cache:\n  routes: overview\n") ==
          "test.yaml:4:11: cache.routes: expected a list of routes, got a single value");
    CHECK(error_of(url + "cache:\n  routes:\n    - overview\n") ==
          "test.yaml:5:7: cache.routes[0]: expected a route (a map), got a single value");
    CHECK(error_of(url + "cache:\n  routes: []\n") == "loaded");
    CHECK(error_of(url + "---\nlog:\n  level: debug\n") ==
          "test.yaml:4:1: the file must hold one YAML document, not several");
}

// Found by test/fuzz/conf_loader.cpp: yaml-cpp 0.7's LoadAll() looped for
// ever, allocating, on a ',' outside a flow collection (on the old code this
// case hangs until CTest's timeout).
TEST_CASE("a stray ',' is a YAML error, not a hang", "[unit]") {
    const std::string url = "upstream:\n  url: http://legacy\n";
    CHECK(error_of(",\n") == "test.yaml:1:1: invalid YAML: unexpected ','");
    CHECK(error_of("# a comment\n  ,\n") == "test.yaml:2:3: invalid YAML: unexpected ','");
    CHECK(error_of("[a]\n,\n") == "test.yaml:2:1: invalid YAML: unexpected ','");
    CHECK(error_of(url + "cache:\n  routes: [\n    ]\n") == "loaded");  // a flow list over lines
}

TEST_CASE("cross-field and enum checks", "[unit]") {
    const std::string url = "upstream:\n  url: http://legacy\n";
    CHECK(error_of(url + "external:\n  foreground:\n    base: 1s\n    max: 100ms\n") ==
          "test.yaml:6:10: external.foreground.max: max (100ms) must not be below base (1s)");
    // The default max (4s) is below a base of 5s: pointed at base.
    CHECK(error_of(url + "external:\n  background:\n    base: 5s\n") ==
          "test.yaml:5:11: external.background.base: max (4s) must not be below base (5s)");
    CHECK(error_of(url + "external:\n  background:\n    tries: 5\n") ==
          "test.yaml:5:5: external.background.tries: unknown key (expected one of: attempts, base, max, "
          "multiplier)");
    CHECK(error_of(url + "external:\n  breaker:\n    failure_rate: 1.5\n") ==
          "test.yaml:5:19: external.breaker.failure_rate: 1.5 is out of range: must be from 0 to 1");
    CHECK(error_of("upstream:\n  url: http://legacy\n  max_connections: 8\n  max_idle_connections: 9\n") ==
          "test.yaml:4:25: upstream.max_idle_connections: must not exceed upstream.max_connections (8)");
    CHECK(load_string("upstream:\n  url: http://legacy\n  max_connections: 8\n", "t.yaml", fake_env())
              .upstream.max_idle_connections == 8);
    CHECK(error_of(url + "server:\n  listen: 127.0.0.1:9000\nadmin:\n  listen: 127.0.0.1:9000\n") ==
          "test.yaml:6:11: admin.listen: 127.0.0.1:9000 is also server.listen");
    CHECK(error_of(url + "server:\n  listen: 127.0.0.1:9901\n") ==
          "test.yaml:4:11: server.listen: 127.0.0.1:9901 is also admin.listen (its default)");
    CHECK(error_of(url + "server:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n") == "loaded");
    CHECK(error_of(url + "database:\n  notify_channel: Bad-Channel\n") ==
          "test.yaml:4:19: database.notify_channel: \"Bad-Channel\" must be a lower-case SQL identifier "
          "(a-z, 0-9, _; at "
          "most 63)");
    CHECK(error_of(url + "database:\n  queries_dir: \"\"\n") ==
          "test.yaml:4:16: database.queries_dir: must not be empty");
    CHECK(error_of(url + "database:\n  listen_notify: yes\n") ==
          "test.yaml:4:18: database.listen_notify: \"yes\" is not a boolean (write true or false)");
    CHECK(error_of(url + "database:\n  listen_notify:\n    - true\n") ==
          "test.yaml:5:5: database.listen_notify: expected a single value, got a list");
    CHECK(error_of(url + "database:\n  listen_ping_interval: 50ms\n") ==
          "test.yaml:4:25: database.listen_ping_interval: 50ms is out of range: must be from 100ms to 1h");
    CHECK(error_of(url + "database:\n  listen_ping_interval: 30\n") ==
          "test.yaml:4:25: database.listen_ping_interval: \"30\" is not a duration (write 250ms, 30s, 10m, "
          "1h or 0)");
    CHECK(error_of(url + "database:\n  listen_notfy: true\n") ==
          "test.yaml:4:3: database.listen_notfy: unknown key, did you mean \"listen_notify\"? (expected one "
          "of: url, pool_size, connect_timeout, "
          "query_timeout, reconnect_backoff_max, reconnect_wait, migrate_on_start, refresh_interval, "
          "refresh_marked_users, "
          "queries_dir, "
          "migrations_dir, "
          "notify_channel, listen_notify, listen_ping_interval, heartbeat_interval, heartbeat_timeout)");
    {
        auto cfg = load_string(url + "database:\n  listen_notify: false\n  listen_ping_interval: 2s\n",
                               "t.yaml", fake_env());
        CHECK_FALSE(cfg.database.listen_notify);
        CHECK(cfg.database.listen_ping_interval == std::chrono::seconds(2));
    }
    // heartbeat_interval: 0 (off) or 10ms..1h.
    CHECK(load_string(url + "database:\n  heartbeat_interval: 0\n", "t.yaml", fake_env())
              .database.heartbeat_interval == std::chrono::milliseconds(0));
    CHECK(load_string(url + "database:\n  heartbeat_interval: 200ms\n", "t.yaml", fake_env())
              .database.heartbeat_interval == std::chrono::milliseconds(200));
    CHECK(error_of(url + "database:\n  heartbeat_interval: 5ms\n") ==
          "test.yaml:4:23: database.heartbeat_interval: 5ms is out of range: must be 0 (off) or from 10ms to "
          "1h");
    CHECK(error_of(url + "database:\n  heartbeat_interval: 2h\n") ==
          "test.yaml:4:23: database.heartbeat_interval: 2h is out of range: must be from 0 to 1h");
    CHECK(error_of(url + "database:\n  heartbeat_interval: often\n") ==
          "test.yaml:4:23: database.heartbeat_interval: \"often\" is not a duration (write 250ms, 30s, 10m, "
          "1h or 0)");
    // reconnect_wait: 2s by default, 0 allowed (fall back at once).
    CHECK(load_string(url, "t.yaml", fake_env()).database.reconnect_wait == std::chrono::seconds(2));
    CHECK(load_string(url + "database:\n  reconnect_wait: 0\n", "t.yaml", fake_env()).database.reconnect_wait ==
          std::chrono::milliseconds(0));
    CHECK(error_of(url + "database:\n  reconnect_wait: 2h\n") ==
          "test.yaml:4:19: database.reconnect_wait: 2h is out of range: must be from 0 to 1h");
    // heartbeat_timeout: at least two intervals; absent, 10s or three intervals.
    CHECK(load_string(url, "t.yaml", fake_env()).database.heartbeat_timeout == std::chrono::seconds(10));
    CHECK(load_string(url + "database:\n  heartbeat_interval: 5s\n", "t.yaml", fake_env())
              .database.heartbeat_timeout == std::chrono::seconds(15));
    CHECK(load_string(url + "database:\n  heartbeat_interval: 200ms\n  heartbeat_timeout: 400ms\n", "t.yaml",
                      fake_env())
              .database.heartbeat_timeout == std::chrono::milliseconds(400));
    CHECK(error_of(url + "database:\n  heartbeat_timeout: 3s\n") ==
          "test.yaml:4:22: database.heartbeat_timeout: 3s must be at least two heartbeat_intervals (4s)");
    CHECK(error_of(url + "database:\n  refresh_marked_users: 0\n") ==
          "test.yaml:4:25: database.refresh_marked_users: 0 is out of range: must be from 1 to 1000000000");
    CHECK(error_of(url + "database:\n  refresh_marked_users: many\n") ==
          "test.yaml:4:25: database.refresh_marked_users: \"many\" is not a whole number");
    CHECK(load_string(url + "database:\n  refresh_marked_users: 5\n", "t.yaml", fake_env())
              .database.refresh_marked_users == 5);
    CHECK(error_of(url + "log:\n  level: verbose\n") ==
          "test.yaml:4:10: log.level: must be one of debug, info, warn, error (got \"verbose\")");
    CHECK(error_of(url + "admin:\n  enabled: 1\n") ==
          "test.yaml:4:12: admin.enabled: \"1\" is not a boolean (write true or false)");
}

TEST_CASE("cache.midnight_refill: values, defaults and bounds", "[unit]") {
    auto with_refill = [](const std::string& body) { return with_line(6, "cache:\n  midnight_refill:\n" + body); };
    SECTION("defaults") {
        auto cfg = load_string(good, "test.yaml", fake_env());
        CHECK(cfg.cache.midnight_refill.enabled);
        CHECK(cfg.cache.midnight_refill.recent == 10min);
        CHECK(cfg.cache.midnight_refill.max_entries == 10'000);
        CHECK(cfg.cache.midnight_refill.concurrency == 8);
        CHECK(cfg.cache.midnight_refill.spread == 30s);
    }
    SECTION("every key") {
        auto cfg = load_string(with_refill("    enabled: false\n    recent: 2m\n    max_entries: 50\n"
                                           "    concurrency: 3\n    spread: 5s"),
                               "test.yaml", fake_env());
        CHECK_FALSE(cfg.cache.midnight_refill.enabled);
        CHECK(cfg.cache.midnight_refill.recent == 2min);
        CHECK(cfg.cache.midnight_refill.max_entries == 50);
        CHECK(cfg.cache.midnight_refill.concurrency == 3);
        CHECK(cfg.cache.midnight_refill.spread == 5s);
        REQUIRE(cfg.cache.routes.size() == 2);
    }
    SECTION("bounds and unknown keys") {
        CHECK(error_of(with_refill("    concurrency: 0")) ==
              "test.yaml:8:18: cache.midnight_refill.concurrency: 0 is out of range: must be from 1 to 1024");
        CHECK(error_of(with_refill("    spread: 2h")).starts_with("test.yaml:8:13: cache.midnight_refill.spread: "));
        CHECK(error_of(with_refill("    recent: 0s")).starts_with("test.yaml:8:13: cache.midnight_refill.recent: "));
        CHECK(error_of(with_refill("    concurency: 2")).starts_with(
            "test.yaml:8:5: cache.midnight_refill.concurency: unknown key, did you mean \"concurrency\"?"));
    }
}

TEST_CASE("cache.warmup: values, defaults and bounds", "[unit]") {
    auto with_warmup = [](const std::string& body) { return with_line(6, "cache:\n  warmup:\n" + body); };
    SECTION("defaults: off") {
        auto cfg = load_string(good, "test.yaml", fake_env());
        CHECK_FALSE(cfg.cache.warmup.enabled);
        CHECK(cfg.cache.warmup.users == 1'000);
        CHECK(cfg.cache.warmup.lookback == 24h);
        CHECK(cfg.cache.warmup.concurrency == 4);
        CHECK(cfg.cache.warmup.ready_timeout == 0s);
    }
    SECTION("every key") {
        auto cfg = load_string(with_warmup("    enabled: true\n    users: 50\n    lookback: 2h\n"
                                           "    concurrency: 3\n    ready_timeout: 20s"),
                               "test.yaml", fake_env());
        CHECK(cfg.cache.warmup.enabled);
        CHECK(cfg.cache.warmup.users == 50);
        CHECK(cfg.cache.warmup.lookback == 2h);
        CHECK(cfg.cache.warmup.concurrency == 3);
        CHECK(cfg.cache.warmup.ready_timeout == 20s);
    }
    SECTION("bounds and unknown keys") {
        CHECK(error_of(with_warmup("    users: 0")) ==
              "test.yaml:8:12: cache.warmup.users: 0 is out of range: must be from 1 to 1000000");
        CHECK(error_of(with_warmup("    concurrency: 0")).starts_with("test.yaml:8:18: cache.warmup.concurrency: "));
        CHECK(error_of(with_warmup("    ready_timeout: 2h")).starts_with("test.yaml:8:20: cache.warmup.ready_timeout: "));
        CHECK(error_of(with_warmup("    lookbak: 1h")).starts_with(
            "test.yaml:8:5: cache.warmup.lookbak: unknown key, did you mean \"lookback\"?"));
    }
}

TEST_CASE("l2: off without a url; values, defaults and bounds", "[unit]") {
    auto with_l2 = [](const std::string& body) { return good + "l2:\n" + body + "\n"; };
    SECTION("defaults: off, and an empty url (the example's unset variable) is off") {
        for (const auto& yaml : {good, with_l2("  url: ${SIDECACHE_REDIS_URL:-}")}) {
            auto cfg = load_string(yaml, "test.yaml", fake_env());
            CHECK_FALSE(cfg.l2.enabled);
            CHECK(cfg.l2.connections == 2);
            CHECK(cfg.l2.op_timeout == 20ms);
            CHECK(cfg.l2.connect_timeout == 200ms);
            CHECK(cfg.l2.key_prefix == "sidecache:");
            CHECK(cfg.l2.max_value_bytes == 1024 * 1024);
            CHECK(cfg.l2.breaker_failures == 5);
            CHECK(cfg.l2.breaker_open_for == 1s);
            CHECK(cfg.l2.fill_lock_wait == 150ms);
            CHECK(cfg.l2.fill_lock_ttl == 1s);
        }
    }
    SECTION("every key") {
        auto cfg = load_string(with_l2("  url: redis://app:pw@redis.internal:6380/3\n  connections: 4\n"
                                       "  op_timeout: 5ms\n  connect_timeout: 1s\n  key_prefix: \"sc:\"\n"
                                       "  max_value_bytes: 64KiB\n  breaker_failures: 3\n"
                                       "  breaker_open_for: 2s\n  fill_lock_wait: 0s\n  fill_lock_ttl: 3s"),
                               "test.yaml", fake_env());
        CHECK(cfg.l2.enabled);
        CHECK(cfg.l2.url.host == "redis.internal");
        CHECK(cfg.l2.url.port == 6380);
        CHECK(cfg.l2.url.user == "app");
        CHECK(cfg.l2.url.password == "pw");
        CHECK(cfg.l2.url.db == 3);
        CHECK(cfg.l2.connections == 4);
        CHECK(cfg.l2.op_timeout == 5ms);
        CHECK(cfg.l2.connect_timeout == 1s);
        CHECK(cfg.l2.key_prefix == "sc:");
        CHECK(cfg.l2.max_value_bytes == 64 * 1024);
        CHECK(cfg.l2.breaker_failures == 3);
        CHECK(cfg.l2.breaker_open_for == 2s);
        CHECK(cfg.l2.fill_lock_wait == 0ms);
        CHECK(cfg.l2.fill_lock_ttl == 3s);
    }
    SECTION("the url from the environment; port and db default") {
        auto cfg = load_string(with_l2("  url: ${SIDECACHE_REDIS_URL:-}"), "test.yaml",
                               fake_env({{"SIDECACHE_REDIS_URL", "redis://127.0.0.1"}}));
        CHECK(cfg.l2.enabled);
        CHECK(cfg.l2.url.host == "127.0.0.1");
        CHECK(cfg.l2.url.port == 6379);
        CHECK(cfg.l2.url.db == 0);
        CHECK(cfg.l2.url.user.empty());
    }
    SECTION("a bad url refuses the start at its line and column") {
        CHECK(error_of(with_l2("  url: http://127.0.0.1:6379")) ==
              "test.yaml:19:8: l2.url: \"http://127.0.0.1:6379\" is not a redis:// URL: the scheme must be "
              "redis");
        CHECK(error_of(with_l2("  url: redis://127.0.0.1:99999")).starts_with("test.yaml:19:8: l2.url: "));
        CHECK(error_of(with_l2("  url: redis://127.0.0.1/16")).ends_with("a database number from 0 to 15"));
        CHECK(error_of(with_l2("  url: redis:///0")).ends_with("no host"));
    }
    SECTION("bounds and unknown keys") {
        CHECK(error_of(with_l2("  op_timeout: 0")).starts_with("test.yaml:19:15: l2.op_timeout: "));
        CHECK(error_of(with_l2("  connections: 0")).starts_with("test.yaml:19:16: l2.connections: "));
        CHECK(error_of(with_l2("  key_prefix: \"a b\"")).starts_with("test.yaml:19:15: l2.key_prefix: "));
        CHECK(error_of(with_l2("  op_timout: 5ms"))
                  .starts_with("test.yaml:19:3: l2.op_timout: unknown key, did you mean \"op_timeout\"?"));
    }
}

TEST_CASE("load_file names the file it cannot read", "[unit]") {
    try {
        load_file("/nonexistent/sidecache.yaml", fake_env());
        FAIL("loaded a file that does not exist");
    } catch (const error& e) {
        CHECK(std::string(e.what()) ==
              "/nonexistent/sidecache.yaml: cannot read the configuration file: No such file or directory");
        CHECK(e.line() == 0);
    }
    try {
        load_file(SIDECACHE_SOURCE_DIR, fake_env());
        FAIL("loaded a directory");
    } catch (const error& e) {
        CHECK(std::string(e.what()) ==
              std::string(SIDECACHE_SOURCE_DIR) + ": cannot read the configuration file: it is a directory");
    }
}

namespace {

const std::string example = std::string(SIDECACHE_SOURCE_DIR) + "/conf/sidecache.example.yaml";

// The example documents each key with its default: apart from the values
// taken from the environment and the routes, it must load as config{}.
void check_defaults(const config& cfg) {
    const config d;
    CHECK(cfg.server.threads == d.server.threads);
    CHECK(cfg.server.max_header_bytes == d.server.max_header_bytes);
    CHECK(cfg.server.max_body_bytes == d.server.max_body_bytes);
    CHECK(cfg.server.header_timeout == d.server.header_timeout);
    CHECK(cfg.server.idle_timeout == d.server.idle_timeout);
    CHECK(cfg.server.body_timeout == d.server.body_timeout);
    CHECK(cfg.server.drain_timeout == d.server.drain_timeout);
    CHECK(cfg.server.drain_idle_grace == d.server.drain_idle_grace);
    CHECK(cfg.server.max_pipelined == d.server.max_pipelined);
    CHECK(cfg.server.max_connections == d.server.max_connections);
    CHECK(cfg.admin.enabled == d.admin.enabled);
    CHECK(cfg.upstream.health_check_interval == d.upstream.health_check_interval);
    CHECK(d.upstream.health_check_interval == 5s);
    CHECK(cfg.upstream.max_connections == d.upstream.max_connections);
    CHECK(cfg.upstream.max_idle_connections == d.upstream.max_idle_connections);
    CHECK(cfg.upstream.connect_timeout == d.upstream.connect_timeout);
    CHECK(cfg.upstream.response_timeout == d.upstream.response_timeout);
    CHECK(cfg.upstream.idle_timeout == d.upstream.idle_timeout);
    CHECK(cfg.auth.leeway == d.auth.leeway);
    CHECK(cfg.auth.token_cache_entries == d.auth.token_cache_entries);
    CHECK(cfg.cache.enabled == d.cache.enabled);
    CHECK(cfg.cache.max_bytes == d.cache.max_bytes);
    CHECK(cfg.cache.shards == d.cache.shards);
    CHECK(cfg.cache.midnight_refill.enabled == d.cache.midnight_refill.enabled);
    CHECK(cfg.cache.midnight_refill.recent == d.cache.midnight_refill.recent);
    CHECK(cfg.cache.midnight_refill.max_entries == d.cache.midnight_refill.max_entries);
    CHECK(cfg.cache.midnight_refill.concurrency == d.cache.midnight_refill.concurrency);
    CHECK(cfg.cache.midnight_refill.spread == d.cache.midnight_refill.spread);
    CHECK(cfg.database.pool_size == d.database.pool_size);
    CHECK(cfg.database.connect_timeout == d.database.connect_timeout);
    CHECK(cfg.database.query_timeout == d.database.query_timeout);
    CHECK(cfg.database.reconnect_backoff_max == d.database.reconnect_backoff_max);
    CHECK(cfg.database.migrate_on_start == d.database.migrate_on_start);
    CHECK(cfg.database.refresh_interval == d.database.refresh_interval);
    CHECK(cfg.database.refresh_marked_users == d.database.refresh_marked_users);
    CHECK(cfg.database.queries_dir == d.database.queries_dir);
    CHECK(cfg.database.migrations_dir == d.database.migrations_dir);
    CHECK(cfg.database.notify_channel == d.database.notify_channel);
    CHECK(cfg.database.listen_notify == d.database.listen_notify);
    CHECK(cfg.database.listen_ping_interval == d.database.listen_ping_interval);
    CHECK(cfg.database.heartbeat_interval == d.database.heartbeat_interval);
    CHECK(cfg.external.verify_tls == d.external.verify_tls);
    CHECK(cfg.external.max_connections == d.external.max_connections);
    CHECK(cfg.external.concurrency == d.external.concurrency);
    CHECK(cfg.external.try_timeout == d.external.try_timeout);
    CHECK(cfg.external.deadline == d.external.deadline);
    for (auto [got, want] : {std::pair{cfg.external.foreground, d.external.foreground},
                             std::pair{cfg.external.background, d.external.background}}) {
        CHECK(got.attempts == want.attempts);
        CHECK(got.base == want.base);
        CHECK(got.max == want.max);
        CHECK(got.multiplier == want.multiplier);
    }
    CHECK(cfg.external.breaker.consecutive_failures == d.external.breaker.consecutive_failures);
    CHECK(cfg.external.breaker.failure_rate == d.external.breaker.failure_rate);
    CHECK(cfg.external.breaker.window == d.external.breaker.window);
    CHECK(cfg.external.breaker.min_requests == d.external.breaker.min_requests);
    CHECK(cfg.external.breaker.cool_down == d.external.breaker.cool_down);
    CHECK(cfg.external.config_ttl == d.external.config_ttl);
    CHECK(cfg.external.max_stale == d.external.max_stale);
    CHECK(cfg.log.level == d.log.level);
    CHECK(cfg.log.access_log == d.log.access_log);
    CHECK(cfg.log.user_hash_key == d.log.user_hash_key);

    const route_config r;
    REQUIRE(cfg.cache.routes.size() == 3);
    std::vector<std::vector<std::string>> expected{{"overview", "/api/dashboard/overview", "overview"},
                                                   {"analytics", "/api/dashboard/analytics", "analytics"},
                                                   {"agents", "/api/agents", "agents"}};
    for (std::size_t i = 0; i < 3; ++i) {
        const route_config& got = cfg.cache.routes[i];
        CAPTURE(i);
        CHECK(got.name == expected[i][0]);
        CHECK(got.path == expected[i][1]);
        CHECK(got.query == expected[i][2]);
        CHECK(got.fill == fill_kind::postgres);
        CHECK(got.enrich_agents == (got.name == "agents"));
        CHECK(got.query_params.empty());
        CHECK(got.ttl == 30s);
        CHECK(got.stale_while_revalidate == 30s);
        CHECK(got.stale_if_error == 5min);
        CHECK(got.utc_day_bound);
        CHECK(got.max_waiters == r.max_waiters);
        CHECK(got.wait_timeout == r.wait_timeout);
        CHECK(got.fill_timeout == 30s);
        CHECK(got.failure_backoff == 1s);
        CHECK(got.failure_backoff_max == 30s);
        CHECK(got.degraded_ttl == r.degraded_ttl);
    }
    CHECK_FALSE(cfg.l2.enabled);
    CHECK(cfg.l2.connections == d.l2.connections);
    CHECK(cfg.l2.op_timeout == d.l2.op_timeout);
    CHECK(cfg.l2.connect_timeout == d.l2.connect_timeout);
    CHECK(cfg.l2.key_prefix == d.l2.key_prefix);
    CHECK(cfg.l2.max_value_bytes == d.l2.max_value_bytes);
    CHECK(cfg.l2.breaker_failures == d.l2.breaker_failures);
    CHECK(cfg.l2.breaker_open_for == d.l2.breaker_open_for);
    CHECK(cfg.l2.fill_lock_wait == d.l2.fill_lock_wait);
    CHECK(cfg.l2.fill_lock_ttl == d.l2.fill_lock_ttl);
}

}  // namespace

TEST_CASE("the example file loads with no environment variable set", "[unit]") {
    config cfg = load_file(example, fake_env());
    CHECK(cfg.source_file == example);
    CHECK(cfg.server.listen.host == "127.0.0.1");
    CHECK(cfg.server.listen.port == 8080);
    CHECK(cfg.admin.listen.host == "127.0.0.1");
    CHECK(cfg.admin.listen.port == 9901);
    CHECK(cfg.upstream.url.scheme == "http");
    CHECK(cfg.upstream.url.host == "127.0.0.1");
    CHECK(cfg.upstream.url.port == 3000);
    CHECK(cfg.database.url.empty());
    CHECK(cfg.auth.jwt_secret.empty());
    CHECK(cfg.admin.token.empty());
    CHECK(cfg.external.url.scheme == "https");
    CHECK(cfg.external.url.host == "api.elevenlabs.io");
    CHECK(cfg.external.url.port == 443);
    CHECK(cfg.external.api_key.empty());
    check_defaults(cfg);
}

TEST_CASE("the example file takes its deployment values from the environment", "[unit]") {
    config cfg = load_file(example, fake_env({
                                        {"SIDECACHE_LISTEN", "0.0.0.0:18080"},
                                        {"SIDECACHE_ADMIN_LISTEN", "[::1]:19901"},
                                        {"LEGACY_URL", "http://legacy.internal:3001/"},
                                        {"DATABASE_URL", "postgresql://app@db:5432/app"},
                                        {"JWT_SECRET", "s3cr$t"},
                                        {"ELEVENLABS_URL", "http://127.0.0.1:18000"},
                                        {"ELEVENLABS_API_KEY", "xi-key"},
                                        {"SIDECACHE_ADMIN_TOKEN", "adm-t0ken"},
                                    }));
    CHECK(cfg.server.listen.host == "0.0.0.0");
    CHECK(cfg.server.listen.port == 18080);
    CHECK(cfg.admin.listen.host == "::1");
    CHECK(cfg.admin.listen.port == 19901);
    CHECK(cfg.upstream.url.host == "legacy.internal");
    CHECK(cfg.upstream.url.port == 3001);
    CHECK(cfg.upstream.url.path.empty());
    CHECK(cfg.database.url == "postgresql://app@db:5432/app");
    CHECK(cfg.auth.jwt_secret == "s3cr$t");
    CHECK(cfg.external.url.scheme == "http");
    CHECK(cfg.external.url.port == 18000);
    CHECK(cfg.external.api_key == "xi-key");
    CHECK(cfg.admin.token == "adm-t0ken");
    check_defaults(cfg);
}

TEST_CASE("log.user_hash_key: empty (a random key) or at least 16 characters", "[unit]") {
    const std::string url = "upstream:\n  url: http://legacy\n";
    CHECK(load_string(url, "test.yaml", fake_env()).log.user_hash_key.empty());
    const auto from_env = load_string(url + "log:\n  user_hash_key: ${K:-}\n", "test.yaml",
                                      fake_env({{"K", "0123456789abcdef"}}));
    CHECK(from_env.log.user_hash_key == "0123456789abcdef");
    CHECK(load_string(url + "log:\n  user_hash_key: ${K:-}\n", "test.yaml", fake_env()).log.user_hash_key.empty());
    CHECK(error_of(url + "log:\n  user_hash_key: short\n") ==
          "test.yaml:4:18: log.user_hash_key: must be empty (a random key) or at least 16 characters (got 5)");
}
