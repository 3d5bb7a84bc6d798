// The listener's heartbeat as a user sees it (docs/freshness.md, "Heartbeat"):
// a LISTEN connection that falls silent (its PostgreSQL backend stopped
// with SIGSTOP: the socket stays open, nothing moves on it) is noticed
// within two heartbeats: no answer is a HIT from then on (STALE, refilled
// behind it) and /ready answers 503 naming the heartbeat. Silent past
// heartbeat_timeout it is taken for dead: replaced, and everything cached
// before the gap is gone. Back before that (a loaded server, not a dead
// one), it keeps its connection and every change queued on it. PostgreSQL
// fills over the migrations, the legacy stand-in behind, as in
// test_invalidation.cpp. Entries live 60 s + 60 s stale: without the
// heartbeat, every HIT below would stay a HIT.
#include "db/fixture.hpp"
#include "db/pg_test_db.ipp"
#include "db/pool.hpp"
#include "db/run_sync.hpp"
#include "proxy/application.hpp"
#include "proxy/server.hpp"
#include "support/admin_stats.hpp"
#include "support/authorized_get.hpp"
#include "support/child_process.hpp"
#include "support/stopped_backend.hpp"
#include "support/test_client.hpp"
#include "support/within.hpp"
#include "support/test_config.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstdlib>
#include <thread>

using namespace sidecache;
using namespace sidecache::test;
namespace json = boost::json;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

namespace {

constexpr auto heartbeat = 200ms;
const std::string overview = "/api/dashboard/overview";

struct ready_answer {
    unsigned status = 0;
    std::string body;
};

ready_answer ready(std::uint16_t admin_port) {
    test_client admin(admin_port);
    admin.send(get_request("/ready"));
    auto r = admin.read_response();
    REQUIRE(r);
    return {r->status, r->body};
}

json::object invalidation(std::uint16_t admin_port) {
    return admin_stats(admin_port).at("invalidation").as_object();
}

struct setup {
    std::optional<pg_test_db> db;
    std::optional<child_process> legacy;
    std::optional<proxy::application> app;
    const std::string secret = "heartbeat-secret";
    std::chrono::milliseconds heartbeat_timeout = 1s;

    bool start() {
        auto created = pg_test_db::create(true);
        if (!created) return false;
        db.emplace(std::move(*created));
        db->sql(fixture_sql);
        const auto src = source_dir();
        if (!node_stand_ins_available(src)) return false;
        legacy.emplace("node " + src + "/test/legacy/server.js --port 0 --database-url '" + db->url() +
                       "' --jwt-secret " + secret);

        auto cfg = test_config(legacy->listening_port());
        cfg.auth.jwt_secret = secret;
        cfg.cache.enabled = true;
        conf::route_config route;
        route.name = "overview";
        route.path = "/api/dashboard/overview";
        route.fill = conf::fill_kind::postgres;
        route.query = "overview";
        route.ttl = 60s;
        route.stale_while_revalidate = 60s;
        route.wait_timeout = 60s;
        cfg.cache.routes.push_back(route);
        cfg.database.url = db->url();
        cfg.database.queries_dir = src + "/db/queries";
        cfg.database.refresh_interval = 0ms;
        cfg.database.reconnect_backoff_max = 200ms;
        cfg.database.heartbeat_interval = heartbeat;
        cfg.database.heartbeat_timeout = heartbeat_timeout;
        app.emplace(cfg);
        app->start();
        REQUIRE(run_sync(app->database()->wait_ready(steady_clock::now() + 10s)));
        // Listening, flushed, and its channel proven by a heartbeat of its own.
        REQUIRE(within(10s, [&] {
            auto s = invalidation(admin());
            return s.at("listening").as_bool() &&
                   s.at("heartbeat").at("received").to_number<std::uint64_t>() >= 1;
        }));
        return true;
    }
    std::uint16_t port() { return app->server().port(); }
    std::uint16_t admin() { return app->server().admin_port(); }
};

// The user's overview filled (MISS) then served from the cache (HIT): its credits.
std::int64_t cached_credits(test_client& client, const std::string& token) {
    CHECK(authorized_get(client, overview, token).x_cache == "MISS");
    const auto hit = authorized_get(client, overview, token);
    REQUIRE(hit.x_cache == "HIT");
    return credits_of(hit);
}

}  // namespace

TEST_CASE("a silently dead listener: no HIT within 2 heartbeats, /ready 503, replaced at heartbeat_timeout and "
          "flushed [pg]",
          "[pg]") {
    setup s;
    if (!s.start()) return;
    test_client client(s.port());
    const auto t1 = token_for(u1, s.secret);
    const auto before = cached_credits(client, t1);
    CHECK(ready(s.admin()).status == 200);

    const auto pid = invalidation(s.admin()).at("backend_pid").to_number<int>();
    REQUIRE(pid != 0);
    // New connections are refused until the test allows them again, so the
    // gap lasts as long as the checks below need (a replacement would
    // otherwise come within one backoff step, 100 ms). The fills keep their
    // open connections.
    // From the server's own database: PostgreSQL refuses it for the current one.
    const auto database = s.db->sql("SELECT current_database()");
    const char* admin_url = std::getenv("SIDECACHE_TEST_DATABASE_URL");
    REQUIRE(admin_url);
    auto admin = db::pg_session::open(admin_url);
    REQUIRE(admin.has_value());
    auto allow_connections = [&](bool allow) {
        auto sql = fmt::format("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS {}", database, allow);
        INFO(sql << ": " << admin->last_error());
        REQUIRE(admin->execute(sql).has_value());
    };
    allow_connections(false);

    stopped_backend stopped(pid);
    const auto stopped_at = steady_clock::now();
    answer now;
    // Its last heartbeat came back at most one interval before the stop:
    // overdue two intervals after that. 300 ms of margin for a loaded machine.
    REQUIRE(within(2 * heartbeat + 300ms,
                   [&] { return (now = authorized_get(client, overview, t1)).x_cache != "HIT"; }));
    WARN(fmt::format("SIGSTOP -> first answer not a HIT: {:.0f} ms (heartbeat_interval {} ms)",
                     std::chrono::duration<double, std::milli>(steady_clock::now() - stopped_at).count(),
                     heartbeat.count()));
    // Served, but stale-while-revalidate: the same figure, refreshed behind it.
    CHECK(now.x_cache == "STALE");
    CHECK(now.status == 200);
    CHECK(credits_of(now) == before);
    auto r = ready(s.admin());
    CHECK(r.status == 503);
    CHECK(r.body.find("invalidation: listener: no heartbeat for ") != std::string::npos);
    INFO(r.body);
    CHECK(invalidation(s.admin()).at("heartbeat").at("overdue").as_bool());
    // Given up at heartbeat_timeout (since the last heartbeat heard), not before.
    CHECK(within(s.heartbeat_timeout + 500ms, [&] { return !invalidation(s.admin()).at("listening").as_bool(); }));
    CHECK(steady_clock::now() - stopped_at >= s.heartbeat_timeout - heartbeat);

    // A write the dead listener cannot hear of: no NOTIFY arrives, yet each
    // request refreshes the entry, so it shows within a request or two.
    s.db->sql(fmt::format("UPDATE users SET credits = credits + 1 WHERE id = '{}'", u1));
    CHECK(within(2s, [&] { return credits_of(now = authorized_get(client, overview, t1)) == before + 1; }));
    CHECK(now.x_cache == "STALE");

    // The way back: connections allowed, the old backend resumed (it finds
    // its client gone and exits). The listener reconnects and flushes.
    allow_connections(true);
    stopped.resume();
    CHECK(within(5s, [&] {
        auto i = invalidation(s.admin());
        return i.at("reconnects").to_number<std::uint64_t>() == 1 && i.at("listening").as_bool() &&
               !i.at("heartbeat").at("overdue").as_bool();
    }));
    CHECK(invalidation(s.admin()).at("backend_pid").to_number<int>() != pid);
    r = ready(s.admin());
    CHECK(r.status == 200);
    INFO(r.body);
    // Everything cached before (and during) the gap was evicted: a fill, then hits again.
    now = authorized_get(client, overview, t1);
    CHECK(now.x_cache == "MISS");
    CHECK(credits_of(now) == before + 1);
    CHECK(authorized_get(client, overview, t1).x_cache == "HIT");
    // And NOTIFY works again: a write by SQL is seen at the next requests.
    s.db->sql(fmt::format("UPDATE users SET credits = credits + 1 WHERE id = '{}'", u1));
    CHECK(within(2s, [&] { return credits_of(authorized_get(client, overview, t1)) == before + 2; }));
    s.app->drain(1s);
}

TEST_CASE("a late listener: no HIT while its heartbeat is overdue, then fresh again on the same connection, "
          "its queued changes delivered, nothing flushed [pg]",
          "[pg]") {
    setup s;
    s.heartbeat_timeout = 30s;  // late, never taken for dead here
    if (!s.start()) return;
    test_client client(s.port());
    const auto t1 = token_for(u1, s.secret);
    const auto before = cached_credits(client, t1);
    const auto at_start = invalidation(s.admin());
    const auto pid = at_start.at("backend_pid").to_number<int>();
    const auto user_changes = at_start.at("user_changes").to_number<std::uint64_t>();
    REQUIRE(pid != 0);

    stopped_backend stopped(pid);
    answer now;
    REQUIRE(within(2 * heartbeat + 300ms,
                   [&] { return (now = authorized_get(client, overview, t1)).x_cache != "HIT"; }));
    CHECK(now.x_cache == "STALE");
    CHECK(ready(s.admin()).status == 503);
    // A write while the listener's backend is stopped: its NOTIFY waits in
    // the server's queue for the listener.
    s.db->sql(fmt::format("UPDATE users SET credits = credits + 1 WHERE id = '{}'", u1));
    stopped.resume();  // SIGCONT, long before heartbeat_timeout

    // The next heartbeat comes back: fresh again, on the same connection.
    CHECK(within(3 * heartbeat + 500ms, [&] { return !invalidation(s.admin()).at("heartbeat").at("overdue").as_bool(); }));
    const auto after = invalidation(s.admin());
    CHECK(after.at("heartbeat").at("overdue_count").to_number<std::uint64_t>() == 1);
    CHECK(after.at("reconnects").to_number<std::uint64_t>() == 0);
    CHECK(after.at("backend_pid").to_number<int>() == pid);
    CHECK(after.at("listening").as_bool());
    // The write's notification was delivered late, not lost.
    CHECK(after.at("user_changes").to_number<std::uint64_t>() == user_changes + 1);
    CHECK(ready(s.admin()).status == 200);
    // HITs again, with the write: the stale refills or the late notification
    // replaced the old figure; no flush was needed for it.
    CHECK(within(2s, [&] {
        now = authorized_get(client, overview, t1);
        return now.x_cache == "HIT" && credits_of(now) == before + 1;
    }));
    s.app->drain(1s);
}
