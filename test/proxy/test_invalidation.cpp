// Invalidation by LISTEN/NOTIFY through the whole sidecache, as a user sees
// it: PostgreSQL fills over the migrations (005's triggers), the legacy
// stand-in behind (it answers the users PostgreSQL refuses), the admin /stats.
// Entries live 60 s + 60 s stale here, so without the listener every check
// below that waits for a change would time out.
#include "auth/verifier.hpp"
#include "db/fixture.hpp"
#include "db/pg_test_db.ipp"
#include "db/pool.hpp"
#include "db/run_sync.hpp"
#include "proxy/application.hpp"
#include "proxy/server.hpp"
#include "support/admin_stats.hpp"
#include "support/authorized_get.hpp"
#include "support/child_process.hpp"
#include "support/test_client.hpp"
#include "support/within.hpp"
#include "support/test_config.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <thread>
#include <vector>

using namespace sidecache;
using namespace sidecache::test;
namespace json = boost::json;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

namespace {

std::uint64_t counter(const json::object& s, std::initializer_list<const char*> path) {
    const json::value* v = &s.at(*path.begin());
    for (auto it = path.begin() + 1; it != path.end(); ++it) v = &v->as_object().at(*it);
    return v->is_bool() ? v->as_bool() : v->to_number<std::uint64_t>();
}

std::size_t agents_of(const answer& a) {
    return json::parse(a.body).at("data").as_array().size();
}

// The external agent API stand-in's control plane (test/mocks/elevenlabs.js).
json::object mock_call(std::uint16_t port, const std::string& method, const std::string& path,
                       const std::string& body = "") {
    test_client mock(port);
    mock.send(method + " " + path + " HTTP/1.1\r\nHost: mock\r\nContent-Type: application/json\r\n" +
              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    auto r = mock.read_response();
    REQUIRE(r);
    REQUIRE(r->status == 200);
    return json::parse(r->body).as_object();
}

struct setup {
    std::optional<pg_test_db> db;
    std::optional<child_process> legacy;
    std::uint16_t legacy_port = 0;
    std::optional<child_process> mock;  // with_external: the ElevenLabs stand-in
    std::uint16_t mock_port = 0;
    std::optional<proxy::application> app;
    const std::string secret = "notify-secret";

    // with_external: /api/agents is enriched from the ElevenLabs stand-in,
    // whose answers a test can hold ({"hold": true}) for as long as it needs.
    bool start(bool with_external = false) {
        auto created = pg_test_db::create(true);
        if (!created) return false;
        db.emplace(std::move(*created));
        db->sql(fixture_sql);
        const auto src = source_dir();
        if (!node_stand_ins_available(src)) return false;
        legacy.emplace("node " + src + "/test/legacy/server.js --port 0 --database-url '" + db->url() +
                       "' --jwt-secret " + secret);
        legacy_port = legacy->listening_port();

        auto cfg = test_config(legacy_port);
        if (with_external) {
            mock.emplace("node " + src +
                         "/test/mocks/elevenlabs.js --port 0 --latency-ms 0 --jitter-ms 0 --api-key test-elevenlabs-key");
            mock_port = mock->listening_port();
            cfg.external.url.host = "127.0.0.1";
            cfg.external.url.port = mock_port;
            cfg.external.url.text = "http://127.0.0.1:" + std::to_string(mock_port);
            cfg.external.api_key = "test-elevenlabs-key";
            cfg.external.deadline = 60s;  // a held fetch is released by the test, never timed out
        }
        cfg.auth.jwt_secret = secret;
        cfg.cache.enabled = true;
        for (auto [name, path] :
             {std::pair{"overview", "/api/dashboard/overview"}, std::pair{"agents", "/api/agents"}}) {
            conf::route_config route;
            route.name = name;
            route.path = path;
            route.fill = conf::fill_kind::postgres;
            route.query = name;
            route.ttl = 60s;
            route.stale_while_revalidate = 60s;
            route.enrich_agents = with_external && route.name == "agents";
            route.wait_timeout = 60s;
            cfg.cache.routes.push_back(route);
        }
        cfg.database.url = db->url();
        cfg.database.queries_dir = src + "/db/queries";
        cfg.database.refresh_interval = 0ms;
        cfg.database.reconnect_backoff_max = 200ms;
        app.emplace(cfg);
        app->start();
        // PostgreSQL answers the fills (not the legacy fallback) from the first request on.
        REQUIRE(run_sync(app->database()->wait_ready(steady_clock::now() + 10s)));
        // Listening, and the cache caught up with what it may have missed.
        REQUIRE(within(10s, [&] {
            return counter(admin_stats(admin()), {"invalidation", "listening"}) == 1;
        }));
        return true;
    }
    std::uint16_t port() { return app->server().port(); }
    std::uint16_t admin() { return app->server().admin_port(); }
    std::uint64_t fills(const char* route) {
        return counter(admin_stats(admin()), {"cache", "routes", route, "fills"});
    }
    // Requests of `route` that started or joined a fill.
    std::uint64_t fills_or_joins(const char* route) {
        auto st = admin_stats(admin());
        return counter(st, {"cache", "routes", route, "fills"}) +
               counter(st, {"cache", "routes", route, "coalesced"});
    }
    std::uint64_t changes(const char* kind) { return counter(admin_stats(admin()), {"invalidation", kind}); }
};

}  // namespace

TEST_CASE("a committed change reaches the next request through NOTIFY [pg]", "[pg]") {
    setup s;
    if (!s.start()) return;
    test_client client(s.port());
    const auto t1 = token_for(u1, s.secret);
    const auto t3 = token_for(u3, s.secret);

    SECTION("a deactivated user gets the legacy's 403 at once, not the cached dashboard") {
        CHECK(authorized_get(client, "/api/dashboard/overview", t1).x_cache == "MISS");
        auto hit = authorized_get(client, "/api/dashboard/overview", t1);
        CHECK(hit.status == 200);
        CHECK(hit.x_cache == "HIT");
        CHECK(s.fills("overview") == 1);

        s.db->sql(fmt::format("UPDATE users SET is_active = false WHERE id = '{}'", u1));
        const auto committed = steady_clock::now();
        answer now;
        CHECK(within(
            2s, [&] { return (now = authorized_get(client, "/api/dashboard/overview", t1)).status != 200; }));
        const auto took = steady_clock::now() - committed;
        WARN(fmt::format("COMMIT of the deactivation -> 403: {:.2f} ms",
                         std::chrono::duration<double, std::milli>(took).count()));
        test_client to_legacy(s.legacy_port);
        const auto theirs = authorized_get(to_legacy, "/api/dashboard/overview", t1);
        CHECK(theirs.status == 403);
        CHECK(now.status == theirs.status);
        CHECK(now.body == theirs.body);
        // And never from the cache again.
        auto again = authorized_get(client, "/api/dashboard/overview", t1);
        CHECK(again.status == 403);
        CHECK(again.x_cache != "HIT");
        CHECK(counter(admin_stats(s.admin()), {"invalidation", "user_changes"}) >= 1);
    }

    SECTION("an agent added for one user: their /api/agents shows it, other users' entries stay") {
        CHECK(agents_of(authorized_get(client, "/api/agents", t1)) == 3);
        CHECK(authorized_get(client, "/api/agents", t3).x_cache == "MISS");
        CHECK(authorized_get(client, "/api/dashboard/overview", t3).x_cache == "MISS");
        const auto agents_fills = s.fills("agents");
        const auto overview_fills = s.fills("overview");

        s.db->sql(
            fmt::format("INSERT INTO agents (id, user_id, name, agent_type, status) VALUES "
                        "('a0000000-0000-4000-8000-0000000000aa', '{}', 'New', 'call', 'draft')",
                        u1));
        answer now;
        CHECK(within(2s, [&] { return agents_of(now = authorized_get(client, "/api/agents", t1)) == 4; }));
        CHECK(now.x_cache == "MISS");
        const auto agents = json::parse(now.body).at("data").as_array();
        CHECK(std::any_of(agents.begin(), agents.end(),
                          [](const json::value& a) { return a.at("name") == "New"; }));
        // U3's entries were not touched: hits, and no fill but U1's one.
        CHECK(authorized_get(client, "/api/agents", t3).x_cache == "HIT");
        CHECK(authorized_get(client, "/api/dashboard/overview", t3).x_cache == "HIT");
        CHECK(s.fills("agents") == agents_fills + 1);
        CHECK(s.fills("overview") == overview_fills);
    }

    SECTION("garbled payloads are counted and flush the cache; serving and valid ones go on") {
        CHECK(authorized_get(client, "/api/dashboard/overview", t3).x_cache == "MISS");
        CHECK(authorized_get(client, "/api/dashboard/overview", t3).x_cache == "HIT");
        s.db->sql("NOTIFY sidecache_invalidate, 'garbage'");
        s.db->sql("NOTIFY sidecache_invalidate, 'user:not-a-uuid'");
        s.db->sql("NOTIFY sidecache_invalidate, 'call:11111111-1111-4111-8111-111111111111'");
        s.db->sql("SELECT pg_notify('sidecache_invalidate', repeat('x', 7999))");
        CHECK(within(2s, [&] { return counter(admin_stats(s.admin()), {"invalidation", "garbled"}) == 4; }));
        // Unreadable means "something changed": the entry is filled again.
        CHECK(authorized_get(client, "/api/dashboard/overview", t3).x_cache == "MISS");
        CHECK(counter(admin_stats(s.admin()), {"invalidation", "listening"}) == 1);

        const auto before = credits_of(authorized_get(client, "/api/dashboard/overview", t1));
        CHECK(authorized_get(client, "/api/dashboard/overview", t1).x_cache == "HIT");
        s.db->sql(fmt::format("UPDATE users SET credits = credits + 5 WHERE id = '{}'", u1));
        CHECK(within(2s, [&] {
            return credits_of(authorized_get(client, "/api/dashboard/overview", t1)) == before + 5;
        }));
    }

    SECTION(
        "the listener's backend terminated: it reconnects, flushes what it may have missed, works again") {
        const auto before = credits_of(authorized_get(client, "/api/dashboard/overview", t1));
        CHECK(authorized_get(client, "/api/dashboard/overview", t1).x_cache == "HIT");
        const auto pid = counter(admin_stats(s.admin()), {"invalidation", "backend_pid"});
        REQUIRE(pid != 0);
        CHECK(s.db->sql(fmt::format("SELECT pg_terminate_backend({})", pid)) == "t");
        // While it is down, a change it cannot hear of:
        s.db->sql(fmt::format("UPDATE users SET credits = credits + 1 WHERE id = '{}'", u1));
        CHECK(within(5s, [&] {
            auto st = admin_stats(s.admin());
            return counter(st, {"invalidation", "reconnects"}) == 1 &&
                   counter(st, {"invalidation", "listening"}) == 1;
        }));
        // Whether or not the change was heard, the answer is the new figure.
        CHECK(credits_of(authorized_get(client, "/api/dashboard/overview", t1)) == before + 1);
        CHECK(counter(admin_stats(s.admin()), {"invalidation", "backend_pid"}) != pid);
        s.db->sql(fmt::format("UPDATE users SET credits = credits + 1 WHERE id = '{}'", u1));
        CHECK(within(2s, [&] {
            return credits_of(authorized_get(client, "/api/dashboard/overview", t1)) == before + 2;
        }));
    }
    s.app->drain(1s);
}

TEST_CASE("COMMIT to invalidated answer, 50 times [pg]", "[pg]") {
    setup s;
    if (!s.start()) return;
    test_client client(s.port());
    const auto t1 = token_for(u1, s.secret);
    std::vector<double> ms;
    auto credits = credits_of(authorized_get(client, "/api/dashboard/overview", t1));
    std::string seen;  // the previous round's answers, for a failure's message
    for (int i = 0; i < 50; ++i) {
        INFO("round " << i << ", the previous round's answers: " << seen);
        REQUIRE(authorized_get(client, "/api/dashboard/overview", t1).x_cache == "HIT");
        s.db->sql(fmt::format("UPDATE users SET credits = credits + 1 WHERE id = '{}'", u1));
        const auto committed = steady_clock::now();
        // Asked back to back, no sleep: the first answer with the new figure.
        answer a;
        seen.clear();
        while ((a = authorized_get(client, "/api/dashboard/overview", t1)), seen += a.x_cache + " ",
               credits_of(a) != credits + 1)
            REQUIRE(steady_clock::now() - committed < 2s);
        ms.push_back(std::chrono::duration<double, std::milli>(steady_clock::now() - committed).count());
        ++credits;
    }
    std::sort(ms.begin(), ms.end());
    WARN(fmt::format(
        "COMMIT -> first answer with the new figure, 50 runs: p50 {:.2f} ms, p90 {:.2f} ms, max {:.2f} ms",
        ms[25], ms[45], ms.back()));
    CHECK(ms[25] < 100);
    s.app->drain(1s);
}

TEST_CASE("a write committed while a fill is in flight reaches every request after its NOTIFY [pg]", "[pg]") {
    setup s;
    if (!s.start(true)) return;
    const auto t1 = token_for(u1, s.secret);
    const bool deactivate = GENERATE(true, false);
    INFO((deactivate ? "user deactivated" : "agent added"));

    // A fill of U1's /api/agents begins and is held at its external fetch
    // (U1's one agent with an ElevenLabs id): it has read PostgreSQL already.
    mock_call(s.mock_port, "POST", "/__mock/config", R"({"hold": true})");
    test_client before_write(s.port());
    before_write.send(get_request("/api/agents", "Authorization: Bearer " + t1 + "\r\n"));
    REQUIRE(within(10s, [&] {
        return mock_call(s.mock_port, "GET", "/__mock/stats").at("inFlight").to_number<int>() == 1;
    }));
    REQUIRE(s.fills_or_joins("agents") == 1);

    // The write commits; its NOTIFY has been handled once the counter moves.
    const auto heard = s.changes("user_changes");
    if (deactivate)
        s.db->sql(fmt::format("UPDATE users SET is_active = false WHERE id = '{}'", u1));
    else
        s.db->sql(
            fmt::format("INSERT INTO agents (id, user_id, name, agent_type, status) VALUES "
                        "('a0000000-0000-4000-8000-0000000000aa', '{}', 'New', 'call', 'draft')",
                        u1));
    REQUIRE(within(10s, [&] { return s.changes("user_changes") > heard; }));

    // A request after the NOTIFY: it must not join the fill that read before
    // the write. Released only once it started (or joined) a fill.
    test_client after_write(s.port());
    after_write.send(get_request("/api/agents", "Authorization: Bearer " + t1 + "\r\n"));
    REQUIRE(within(10s, [&] { return s.fills_or_joins("agents") == 2; }));
    mock_call(s.mock_port, "POST", "/__mock/config", R"({"hold": false})");

    auto first = before_write.read_response();  // joined before the write: either answer
    REQUIRE(first);
    auto r = after_write.read_response();
    REQUIRE(r);
    if (deactivate) {
        test_client to_legacy(s.legacy_port);
        const auto theirs = authorized_get(to_legacy, "/api/agents", t1);
        CHECK(theirs.status == 403);
        CHECK(r->status == 403);
        CHECK(r->body == theirs.body);
    } else {
        REQUIRE(r->status == 200);
        CHECK(agents_of({r->status, r->body, r->header("X-Cache")}) == 4);
    }
    // And what is cached from now on shows the write too.
    test_client client(s.port());
    auto again = authorized_get(client, "/api/agents", t1);
    if (deactivate)
        CHECK(again.status == 403);
    else
        CHECK(agents_of(again) == 4);
    s.app->drain(1s);
}

TEST_CASE(
    "an agent changed through SQL: its external configuration and its owner's answers are fetched again [pg]",
    "[pg]") {
    setup s;
    if (!s.start(true)) return;
    test_client client(s.port());
    const auto t1 = token_for(u1, s.secret);
    auto fetched = [&] {
        auto by_agent = mock_call(s.mock_port, "GET", "/__mock/stats").at("byAgent").as_object();
        return by_agent.contains("agent_z") ? by_agent.at("agent_z").to_number<int>() : 0;
    };
    auto first = authorized_get(client, "/api/agents", t1);
    INFO(first.body);
    CHECK(first.x_cache == "MISS");
    CHECK(authorized_get(client, "/api/agents", t1).x_cache == "HIT");
    CHECK(fetched() == 1);

    const auto heard = s.changes("agent_changes");
    s.db->sql(fmt::format("UPDATE agents SET name = 'Renamed' WHERE id = '{}'", a1));
    REQUIRE(within(10s, [&] { return s.changes("agent_changes") > heard; }));

    auto now = authorized_get(client, "/api/agents", t1);
    CHECK(now.x_cache == "MISS");
    CHECK(now.body.find("\"Renamed\"") != std::string::npos);
    CHECK(fetched() == 2);  // the agent's configuration was dropped, not served from agent_config_cache
    CHECK(authorized_get(client, "/api/agents", t1).x_cache == "HIT");
    CHECK(fetched() == 2);
    s.app->drain(1s);
}

TEST_CASE("POST /purge of an agent: its owner's answers and its external configuration are fetched again [pg]",
          "[pg]") {
    setup s;
    if (!s.start(true)) return;
    test_client client(s.port());
    const auto t1 = token_for(u1, s.secret);
    auto fetched = [&] {
        auto by_agent = mock_call(s.mock_port, "GET", "/__mock/stats").at("byAgent").as_object();
        return by_agent.contains("agent_z") ? by_agent.at("agent_z").to_number<int>() : 0;
    };
    auto purge = [&](const std::string& body) {
        test_client admin(s.admin());
        admin.send("POST /purge HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body);
        auto r = admin.read_response();
        REQUIRE(r);
        INFO(r->body);
        REQUIRE(r->status == 200);
        return json::parse(r->body).at("entries").to_number<int>();
    };
    REQUIRE(authorized_get(client, "/api/agents", t1).x_cache == "MISS");
    REQUIRE(authorized_get(client, "/api/dashboard/overview", t1).x_cache == "MISS");
    REQUIRE(authorized_get(client, "/api/agents", t1).x_cache == "HIT");
    REQUIRE(fetched() == 1);

    CHECK(purge(R"({"agent": "agent_z"})") == 1);  // the one answer naming it
    CHECK(authorized_get(client, "/api/agents", t1).x_cache == "MISS");
    CHECK(fetched() == 2);  // its configuration was dropped too
    CHECK(authorized_get(client, "/api/dashboard/overview", t1).x_cache == "HIT");
    CHECK(purge(R"({"agent": "agent_unknown"})") == 0);
    CHECK(authorized_get(client, "/api/agents", t1).x_cache == "HIT");
    s.app->drain(1s);
}
