// cache.warmup against a real PostgreSQL (the hand-made fixture: u1 active
// with calls, u2 inactive with a call, u3 active without calls): after the
// start, the first request of the recently active user is a HIT and the
// legacy hears nothing of it; the others are not warmed. A purge of
// everything (a flush) warms u1 again.
#include "db/fixture.hpp"
#include "db/pg_test_db.ipp"
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

#include <string>

using namespace sidecache;
using namespace sidecache::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* secret = "warmup-secret";
constexpr const char* overview = "/api/dashboard/overview";

std::uint64_t warmup_figure(std::uint16_t admin_port, const char* name) {
    return admin_stats(admin_port).at("warmup").at(name).to_number<std::uint64_t>();
}

conf::config warmup_config(std::uint16_t legacy_port, const std::string& database_url) {
    auto cfg = test_config(legacy_port);
    cfg.auth.jwt_secret = secret;
    cfg.cache.enabled = true;
    conf::route_config route;
    route.name = "overview";
    route.path = overview;
    route.fill = conf::fill_kind::postgres;
    route.query = "overview";
    route.ttl = 10min;
    route.utc_day_bound = false;  // a run across midnight must not turn entries stale
    cfg.cache.routes = {route};
    cfg.cache.warmup.enabled = true;
    cfg.cache.warmup.users = 10;
    cfg.cache.warmup.lookback = 24h * 30;
    cfg.cache.warmup.ready_timeout = 60s;
    cfg.database.url = database_url;
    cfg.database.queries_dir = std::string(SIDECACHE_SOURCE_DIR) + "/db/queries";
    cfg.database.refresh_interval = 0ms;
    return cfg;
}

scripted_response legacy_answer(const recorded_request&) {
    scripted_response r;
    r.body = R"({"success":true,"data":{"from":"legacy"}})";
    return r;
}

}  // namespace

TEST_CASE("warm-up: the recently active user's first request is a HIT, no legacy call [pg]", "[pg]") {
    auto created = pg_test_db::create(true);
    if (!created) return;
    pg_test_db db(std::move(*created));
    db.sql(fixture_sql);
    test_upstream legacy(legacy_answer);
    auto cfg = warmup_config(legacy.port(), db.url());
    cfg.database.listen_notify = false;
    proxy::application app(cfg);
    app.start();
    const auto admin = app.server().admin_port();

    // The start's warm-up ends (an event /stats shows).
    REQUIRE(within(60s, [&] { return warmup_figure(admin, "passes") >= 1; }));
    CHECK(warmup_figure(admin, "users") == 1);  // u1: u2 is inactive, u3 has no call
    CHECK(warmup_figure(admin, "filled") == 1);
    CHECK(warmup_figure(admin, "failed") == 0);

    test_client client(app.server().port());
    const auto warmed = authorized_get(client, overview, token_for(u1, secret));
    CHECK(warmed.status == 200);
    CHECK(warmed.x_cache == "HIT");
    CHECK(warmed.body.find(R"("from":"legacy")") == std::string::npos);
    CHECK(authorized_get(client, overview, token_for(u3, secret)).x_cache == "MISS");
    CHECK(legacy.requests() == 0);

    SECTION("a purge of everything (a flush) warms up again") {
        test_client admin_client(admin);
        admin_client.send("POST /purge HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\n\r\n{\"all\": true}");
        auto purged = admin_client.read_response();
        REQUIRE(purged.has_value());
        CHECK(purged->status == 200);
        REQUIRE(within(60s, [&] { return warmup_figure(admin, "passes") >= 2; }));
        CHECK(authorized_get(client, overview, token_for(u1, secret)).x_cache == "HIT");
        CHECK(legacy.requests() == 0);
    }
}

TEST_CASE("warm-up: with a listener, one pass at start, after its first LISTEN [pg]", "[pg]") {
    // The listener's first LISTEN flushes the cache (what changed before it
    // may be cached): a pass begun at start, before it, would be flushed
    // and run again.
    auto created = pg_test_db::create(true);
    if (!created) return;
    pg_test_db db(std::move(*created));
    db.sql(fixture_sql);
    test_upstream legacy(legacy_answer);
    auto cfg = warmup_config(legacy.port(), db.url());
    cfg.database.listen_notify = true;
    proxy::application app(cfg);
    app.start();
    const auto admin = app.server().admin_port();

    // LISTEN done (its flush came before the counter) and no pass running.
    REQUIRE(within(60s, [&] {
        auto stats = admin_stats(admin);
        return stats.at("invalidation").at("connects").to_number<std::uint64_t>() >= 1 &&
               !stats.at("warmup").at("running").as_bool() &&
               stats.at("warmup").at("passes").to_number<std::uint64_t>() >= 1;
    }));
    CHECK(warmup_figure(admin, "passes") == 1);
    CHECK(warmup_figure(admin, "filled") == 1);
    test_client client(app.server().port());
    CHECK(authorized_get(client, overview, token_for(u1, secret)).x_cache == "HIT");
    CHECK(legacy.requests() == 0);
}
