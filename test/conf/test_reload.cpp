// conf::plan_reload: which keys of a reloaded file change now (live) and
// which need a restart (reported, left as they are), from one known-good
// file with one change per section.

#include "conf/loader.hpp"
#include "conf/reload.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

using namespace sidecache::conf;
using namespace std::chrono_literals;
using strings = std::vector<std::string>;

namespace {

const std::string base_yaml =
    "server:\n  listen: 127.0.0.1:8080\n  threads: 2\n  header_timeout: 10s\n"
    "admin:\n  token: old-admin-token\n"
    "upstream:\n  url: http://legacy:3000\n"
    "auth:\n  jwt_secret: old-jwt-secret\n"
    "log:\n  level: info\n"
    "external:\n  url: https://api.elevenlabs.io\n  try_timeout: 400ms\n"
    "database:\n  url: postgresql://app:pw-one@db/app\n"
    "l2:\n  url: redis://app:redis-secret-1@redis:6379/0\n  op_timeout: 20ms\n"
    "cache:\n  shards: 16\n  routes:\n"
    "    - name: overview\n      path: /api/dashboard/overview\n      ttl: 30s\n"
    "    - name: agents\n      path: /api/agents\n      ttl: 30s\n";

config load(const std::string& yaml) {
    return load_string(yaml, "t.yaml", [](std::string_view) -> std::optional<std::string> { return std::nullopt; });
}

// base_yaml with `from` (which must occur once) replaced by `to`.
config changed(const std::string& from, const std::string& to) {
    auto yaml = base_yaml;
    const auto at = yaml.find(from);
    REQUIRE(at != std::string::npos);
    REQUIRE(yaml.find(from, at + 1) == std::string::npos);
    return load(yaml.replace(at, from.size(), to));
}

}  // namespace

TEST_CASE("reload: the same file changes nothing", "[unit]") {
    const auto running = load(base_yaml);
    const auto plan = plan_reload(running, load(base_yaml));
    CHECK(plan.applied.empty());
    CHECK(plan.needs_restart.empty());
}

TEST_CASE("reload: a live key is applied and shows in the effective configuration", "[unit]") {
    const auto running = load(base_yaml);
    SECTION("a route's ttl") {
        const auto plan = plan_reload(running, changed("/api/agents\n      ttl: 30s", "/api/agents\n      ttl: 2s"));
        CHECK(plan.applied == strings{"cache.routes[1].ttl"});
        CHECK(plan.needs_restart.empty());
        CHECK(plan.effective.cache.routes[1].ttl == 2s);
        CHECK(plan.effective.cache.routes[0].ttl == 30s);
    }
    SECTION("a server timeout") {
        const auto plan = plan_reload(running, changed("header_timeout: 10s", "header_timeout: 3s"));
        CHECK(plan.applied == strings{"server.header_timeout"});
        CHECK(plan.effective.server.header_timeout == 3s);
    }
    SECTION("the drain's idle grace") {
        const auto plan =
            plan_reload(running, changed("header_timeout: 10s", "header_timeout: 10s\n  drain_idle_grace: 250ms"));
        CHECK(plan.applied == strings{"server.drain_idle_grace"});
        CHECK(plan.effective.server.drain_idle_grace == 250ms);
    }
    SECTION("the log level") {
        const auto plan = plan_reload(running, changed("level: info", "level: debug"));
        CHECK(plan.applied == strings{"log.level"});
        CHECK(plan.effective.log.level == "debug");
    }
    SECTION("the admin token, a secret: compared by value though /config redacts it") {
        const auto plan = plan_reload(running, changed("old-admin-token", "new-admin-token"));
        CHECK(plan.applied == strings{"admin.token"});
        CHECK(plan.effective.admin.token == "new-admin-token");
    }
    SECTION("an upstream timeout") {
        const auto plan = plan_reload(running, changed("legacy:3000\n", "legacy:3000\n  response_timeout: 5s\n"));
        CHECK(plan.applied == strings{"upstream.response_timeout"});
        CHECK(plan.effective.upstream.response_timeout == 5s);
    }
    SECTION("an external try timeout") {
        const auto plan = plan_reload(running, changed("try_timeout: 400ms", "try_timeout: 900ms"));
        CHECK(plan.applied == strings{"external.try_timeout"});
        CHECK(plan.effective.external.try_timeout == 900ms);
    }
}

TEST_CASE("reload: a key that cannot change live needs a restart and keeps its running value", "[unit]") {
    const auto running = load(base_yaml);
    SECTION("the listen address") {
        const auto plan = plan_reload(running, changed("127.0.0.1:8080", "127.0.0.1:8081"));
        CHECK(plan.needs_restart == strings{"server.listen"});
        CHECK(plan.applied.empty());
        CHECK(plan.effective.server.listen.port == 8080);
    }
    SECTION("the legacy's URL") {
        const auto plan = plan_reload(running, changed("legacy:3000", "legacy:3001"));
        CHECK(plan.needs_restart == strings{"upstream.url"});
        CHECK(plan.effective.upstream.url.port == 3000);
    }
    SECTION("the thread count") {
        const auto plan = plan_reload(running, changed("threads: 2", "threads: 4"));
        CHECK(plan.needs_restart == strings{"server.threads"});
        CHECK(plan.effective.server.threads == 2);
    }
    SECTION("the cache shards") {
        const auto plan = plan_reload(running, changed("shards: 16", "shards: 8"));
        CHECK(plan.needs_restart == strings{"cache.shards"});
        CHECK(plan.effective.cache.shards == 16);
    }
    SECTION("the database URL's password alone (redacted in /config, still a difference)") {
        const auto plan = plan_reload(running, changed("pw-one", "pw-two"));
        CHECK(plan.needs_restart == strings{"database.url"});
        CHECK(plan.effective.database.url == "postgresql://app:pw-one@db/app");
    }
    SECTION("an l2 key, and the Redis password alone") {
        auto plan = plan_reload(running, changed("op_timeout: 20ms", "op_timeout: 50ms"));
        CHECK(plan.needs_restart == strings{"l2.op_timeout"});
        CHECK(plan.effective.l2.op_timeout == 20ms);
        plan = plan_reload(running, changed("redis-secret-1", "redis-secret-2"));
        CHECK(plan.needs_restart == strings{"l2.url"});
        CHECK(plan.effective.l2.url.password == "redis-secret-1");
    }
    SECTION("the JWT secret") {
        const auto plan = plan_reload(running, changed("old-jwt-secret", "new-jwt-secret"));
        CHECK(plan.needs_restart == strings{"auth.jwt_secret"});
        CHECK(plan.effective.auth.jwt_secret == "old-jwt-secret");
    }
}

TEST_CASE("reload: another list of routes needs a restart, and so do the windows in it", "[unit]") {
    const auto running = load(base_yaml);
    SECTION("a route added") {
        const auto plan =
            plan_reload(running, load(base_yaml + "    - name: analytics\n      path: /api/dashboard/analytics\n"));
        CHECK(plan.needs_restart == strings{"cache.routes"});
        CHECK(plan.applied.empty());
        CHECK(plan.effective.cache.routes.size() == 2);
    }
    SECTION("a route's path changed along with its ttl") {
        const auto plan = plan_reload(
            running, changed("/api/agents\n      ttl: 30s", "/api/agents2\n      ttl: 2s"));
        CHECK(plan.needs_restart == strings{"cache.routes[1].path", "cache.routes[1].ttl"});
        CHECK(plan.applied.empty());
        CHECK(plan.effective.cache.routes[1].ttl == 30s);
    }
}

TEST_CASE("reload: live and restart keys in one file are split, each path named once", "[unit]") {
    const auto running = load(base_yaml);
    auto loaded = changed("threads: 2", "threads: 3");
    loaded.log.level = "warn";
    loaded.cache.routes[0].stale_while_revalidate = 5s;
    const auto plan = plan_reload(running, loaded);
    CHECK(plan.applied == strings{"cache.routes[0].stale_while_revalidate", "log.level"});
    CHECK(plan.needs_restart == strings{"server.threads"});
    CHECK(plan.effective.server.threads == 2);
    CHECK(plan.effective.log.level == "warn");
}
