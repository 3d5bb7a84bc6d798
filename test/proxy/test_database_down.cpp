// PostgreSQL down or slow: sidecache still starts and serves; the cached
// routes fall back to the upstream fill (the legacy answers, sidecache caches
// it), and the admin /ready says why it is degraded without taking sidecache out.
#include "db/pg_test_db.ipp"
#include "db/pool.hpp"
#include "db/run_sync.hpp"
#include "proxy/application.hpp"
#include "proxy/server.hpp"
#include "support/admin_stats.hpp"
#include "support/authorized_get.hpp"
#include "support/test_client.hpp"
#include "support/test_config.hpp"
#include "support/test_upstream.hpp"
#include "support/within.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace sidecache;
using namespace sidecache::test;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

namespace {

// sidecache in front of `legacy_port` with one route, overview, filled by
// the query `query` of `queries_dir` on the database `url`, no refresh.
conf::config overview_config(unsigned short legacy_port, std::string url, std::string queries_dir,
                             std::string query) {
    auto cfg = test_config(legacy_port);
    cfg.auth.jwt_secret = "s";
    cfg.cache.enabled = true;
    conf::route_config route;
    route.name = "overview";
    route.path = "/api/dashboard/overview";
    route.fill = conf::fill_kind::postgres;
    route.query = std::move(query);
    cfg.cache.routes.push_back(route);
    cfg.database.url = std::move(url);
    cfg.database.queries_dir = std::move(queries_dir);
    cfg.database.refresh_interval = conf::duration{0};
    return cfg;
}

}  // namespace

TEST_CASE("with PostgreSQL unreachable, cached routes are filled by the legacy and /ready says degraded",
          "[integration]") {
    test_upstream legacy([](const recorded_request& r) {
        scripted_response res;
        res.headers = {{"Content-Type", "application/json; charset=utf-8"}};
        res.body = R"({"success":true,"data":{"from":"legacy","auth":")" +
                   r.header("Authorization").substr(7, 12) + "\"}}";
        return res;
    });

    // Nothing listens on port 1; connecting fails at once, and keeps failing.
    auto cfg = overview_config(legacy.port(), "postgresql://postgres@127.0.0.1:1/none?connect_timeout=1",
                               std::string(SIDECACHE_SOURCE_DIR) + "/db/queries", "overview");

    proxy::application app(cfg);
    app.start();

    const auto token = token_for("11111111-1111-1111-1111-111111111111", "s");
    test_client client(app.server().port());
    for (const char* expected : {"MISS", "HIT"}) {
        client.send(get_request("/api/dashboard/overview", "Authorization: Bearer " + token + "\r\n"));
        auto res = client.read_response();
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body.find(R"("from":"legacy")") != std::string::npos);
        CHECK(res->header("X-Cache") == expected);
    }
    CHECK(legacy.requests() == 1);

    test_client admin(app.server().admin_port());
    admin.send(get_request("/ready"));
    auto ready = admin.read_response();
    REQUIRE(ready);
    CHECK(ready->status == 200);
    INFO(ready->body);
    CHECK(ready->body.rfind("ready\n", 0) == 0);
    CHECK(ready->body.find("degraded: database: ") != std::string::npos);
    // No LISTEN either: changes are seen only when entries expire, and /ready says so.
    CHECK(ready->body.find("degraded: invalidation: listener ") != std::string::npos);
}

TEST_CASE("a fill query past database.query_timeout is cancelled and the legacy answers [pg]", "[pg]") {
    auto db = pg_test_db::create(false);
    if (!db) return;
    // The route's query sleeps far longer than any deadline below.
    auto dir = std::filesystem::temp_directory_path() / ("sc_slow_queries_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "slow.sql") << "SELECT '{\"user\":\"' || $1 || '\"}' || pg_sleep(30)::text";

    test_upstream legacy([](const recorded_request&) {
        scripted_response res;
        res.headers = {{"Content-Type", "application/json; charset=utf-8"}};
        res.body = R"({"success":true,"data":{"from":"legacy"}})";
        return res;
    });
    auto cfg = overview_config(legacy.port(), db->url(), dir.string(), "slow");
    cfg.cache.routes[0].wait_timeout = 20s;  // the query's own deadline is what ends it
    cfg.database.query_timeout = 300ms;

    proxy::application app(cfg);
    app.start();
    REQUIRE(run_sync(app.database()->wait_ready(steady_clock::now() + 10s)));

    const auto token = token_for("11111111-1111-1111-1111-111111111111", "s");
    test_client client(app.server().port());
    const auto t0 = steady_clock::now();
    client.send(get_request("/api/dashboard/overview", "Authorization: Bearer " + token + "\r\n"));
    auto res = client.read_response();
    const auto took = steady_clock::now() - t0;
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == R"({"success":true,"data":{"from":"legacy"}})");
    CHECK(res->header("X-Cache") == "MISS");
    CHECK(legacy.requests() == 1);
    CHECK(took >= 300ms);
    CHECK(took < 5s);  // not the route's 20 s wait, nor the 30 s sleep

    const auto fills = admin_stats(app.server().admin_port()).at("fills");
    CHECK(fills.at("fallbacks").to_number<int>() == 1);
    CHECK(fills.at("postgres").to_number<int>() == 0);
    CHECK(db->sql(
              "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND state = 'active' "
              "AND pid <> pg_backend_pid()") == "0");
    std::filesystem::remove_all(dir);
}

// Issue 16: a fill falls back to the legacy only when the legacy can answer
// before the fill's deadline. Here the legacy takes 2 s and a fill has 1 s:
// the first fallback is tried (nothing is known yet) and times out; from
// then on the route's fills fail at once (502, stale-if-error would apply)
// instead of sending the legacy requests it cannot answer in time.
TEST_CASE("with PostgreSQL down, a fill is not forwarded to a legacy too slow to answer before its deadline",
          "[integration]") {
    test_upstream legacy([](const recorded_request&) {
        scripted_response res;
        res.delay = std::chrono::milliseconds(2000);
        res.headers = {{"Content-Type", "application/json; charset=utf-8"}};
        res.body = R"({"success":true,"data":{"from":"legacy"}})";
        return res;
    });
    auto cfg = overview_config(legacy.port(), "postgresql://postgres@127.0.0.1:1/none?connect_timeout=1",
                               std::string(SIDECACHE_SOURCE_DIR) + "/db/queries", "overview");
    cfg.cache.routes[0].wait_timeout = 1s;
    cfg.cache.routes[0].fill_timeout = 1s;
    proxy::application app(cfg);
    app.start();

    auto get = [&](const char* user) {
        test_client client(app.server().port());
        client.send(get_request("/api/dashboard/overview",
                                "Authorization: Bearer " + token_for(user, "s") + "\r\n"));
        auto res = client.read_response();
        REQUIRE(res);
        return res->status;
    };
    CHECK(get("11111111-1111-1111-1111-111111111111") >= 500);  // tried: the legacy times out
    CHECK(legacy.requests() == 1);
    // The waiter gives up at its deadline, the fill at the same one: wait
    // for the fill's end, where the legacy's time is learnt.
    REQUIRE(within(std::chrono::milliseconds(10'000), [&] {
        return admin_stats(app.server().admin_port())
                   .at("cache").at("routes").at("overview").at("failed_fills").to_number<int>() == 1;
    }));
    const auto t0 = steady_clock::now();
    CHECK(get("22222222-2222-2222-2222-222222222222") >= 500);  // known too slow: not tried
    CHECK(get("33333333-3333-3333-3333-333333333333") >= 500);
    CHECK(steady_clock::now() - t0 < 1s);
    CHECK(legacy.requests() == 1);

    const auto fills = admin_stats(app.server().admin_port()).at("fills");
    CHECK(fills.at("fallbacks").to_number<int>() == 1);
    CHECK(fills.at("fallbacks_skipped").to_number<int>() == 2);
}
