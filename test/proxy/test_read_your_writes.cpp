// Read-your-writes through the proxy: a write (PATCH) with a verified token
// that the legacy accepts (2xx) evicts its user's cache entries before the
// answer reaches the client, with no NOTIFY to help (the listener is off, or
// there is no database at all). Entries live 60 s here, so without the
// eviction every GET after a write below would be a HIT of the old state.
#include "auth/verifier.hpp"
#include "db/fixture.hpp"
#include "db/pg_test_db.ipp"
#include "proxy/application.hpp"
#include "proxy/server.hpp"
#include "support/admin_stats.hpp"
#include "support/authorized_get.hpp"
#include "support/child_process.hpp"
#include "support/test_client.hpp"
#include "support/test_config.hpp"
#include "support/test_upstream.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

using namespace sidecache;
using namespace sidecache::test;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

std::uint64_t write_invalidations(std::uint16_t admin_port) {
    return admin_stats(admin_port).at("proxy").at("write_invalidations").to_number<std::uint64_t>();
}

std::uint64_t agents_fills(std::uint16_t admin_port) {
    return admin_stats(admin_port)
        .at("cache")
        .at("routes")
        .at("agents")
        .at("fills")
        .to_number<std::uint64_t>();
}

// A PATCH of `target` with a JSON body; its answer's status.
unsigned patch(test_client& client, const std::string& target, const std::string& token,
               const std::string& body) {
    client.send(
        fmt::format("PATCH {} HTTP/1.1\r\nHost: sidecache\r\nAuthorization: Bearer {}\r\n"
                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                    target, token, body.size(), body));
    auto r = client.read_response();
    REQUIRE(r.has_value());
    return r->status;
}

conf::route_config agents_route(conf::fill_kind fill) {
    conf::route_config route;
    route.name = "agents";
    route.path = "/api/agents";
    route.fill = fill;
    if (fill == conf::fill_kind::postgres) route.query = "agents";
    route.ttl = 60s;
    route.stale_while_revalidate = 60s;
    route.utc_day_bound = false;  // a run across midnight must not turn entries stale
    return route;
}

// The scripted legacy: GET /api/agents names the user and how many GETs it
// answered; a PATCH answers `write_status`.
struct scripted {
    const std::string secret = "ryw-secret";
    std::atomic<unsigned> write_status{200};
    std::atomic<int> gets{0};
    test_upstream up{[this](const recorded_request& req) {
        scripted_response r;
        r.headers = {{"Content-Type", "application/json; charset=utf-8"}};
        if (req.method == "GET") {
            r.body = fmt::format(R"({{"success":true,"data":{{"get":{}}}}})", ++gets);
        } else {
            r.status = write_status;
            if (r.status != 204) r.body = R"({"success":true})";
        }
        return r;
    }};
    std::optional<proxy::application> app;

    scripted() {
        auto cfg = test_config(up.port());
        cfg.auth.jwt_secret = secret;
        cfg.cache.enabled = true;
        cfg.cache.routes = {agents_route(conf::fill_kind::upstream)};
        app.emplace(cfg);
        app->start();
    }
    std::uint16_t port() { return app->server().port(); }
    std::uint16_t admin() { return app->server().admin_port(); }
};

}  // namespace

TEST_CASE("a write answered 2xx evicts its user's entries before the answer", "[integration]") {
    scripted s;
    test_client client(s.port());
    const auto t1 = token_for(u1, s.secret);
    const auto t3 = token_for(u3, s.secret);
    const auto before = authorized_get(client, "/api/agents", t1);
    CHECK(before.x_cache == "MISS");
    CHECK(authorized_get(client, "/api/agents", t1).x_cache == "HIT");
    CHECK(authorized_get(client, "/api/agents", t3).x_cache == "MISS");
    const std::string agent = std::string("/api/agents/") + a1;

    SECTION("2xx: the writer's next GET is a fill with the upstream's new answer, on the same connection") {
        const auto status = GENERATE(200u, 201u, 204u);
        s.write_status = status;
        CHECK(patch(client, agent, t1, R"({"name":"x"})") == status);
        const auto after = authorized_get(client, "/api/agents", t1);
        CHECK(after.x_cache == "MISS");
        CHECK(after.body != before.body);
        CHECK(write_invalidations(s.admin()) == 1);
    }
    SECTION("4xx/5xx: nothing evicted") {
        s.write_status = GENERATE(400u, 404u, 500u, 503u);
        CHECK(patch(client, agent, t1, R"({"name":"x"})") == s.write_status);
        const auto after = authorized_get(client, "/api/agents", t1);
        CHECK(after.x_cache == "HIT");
        CHECK(after.body == before.body);
        CHECK(write_invalidations(s.admin()) == 0);
    }
    SECTION("a forged token: forwarded, nothing evicted") {
        CHECK(patch(client, agent, token_for(u1, "not-the-secret"), R"({"name":"x"})") == 200);
        CHECK(authorized_get(client, "/api/agents", t1).x_cache == "HIT");
        CHECK(write_invalidations(s.admin()) == 0);
    }
    SECTION("user A's write does not evict user B") {
        CHECK(patch(client, agent, t1, R"({"name":"x"})") == 200);
        CHECK(authorized_get(client, "/api/agents", t3).x_cache == "HIT");
        CHECK(authorized_get(client, "/api/agents", t1).x_cache == "MISS");
    }
    CHECK(s.up.requests() == static_cast<std::size_t>(s.gets + 1));  // the PATCH reached the upstream
}

TEST_CASE("PATCH an agent's name through sidecache: the next GET shows it, without NOTIFY [pg]", "[pg]") {
    auto created = pg_test_db::create(true);
    if (!created) return;
    pg_test_db db(std::move(*created));
    db.sql(fixture_sql);
    const auto src = source_dir();
    if (!node_stand_ins_available(src)) return;
    const std::string secret = "ryw-pg-secret";
    child_process legacy("node " + src + "/test/legacy/server.js --port 0 --database-url '" + db.url() +
                         "' --jwt-secret " + secret);
    auto cfg = test_config(legacy.listening_port());
    cfg.auth.jwt_secret = secret;
    cfg.cache.enabled = true;
    cfg.cache.routes = {agents_route(conf::fill_kind::postgres)};
    cfg.database.url = db.url();
    cfg.database.queries_dir = src + "/db/queries";
    cfg.database.refresh_interval = 0ms;
    cfg.database.listen_notify = false;
    proxy::application app(cfg);
    app.start();
    const auto admin = app.server().admin_port();
    test_client client(app.server().port());
    const auto t1 = token_for(u1, secret);
    const auto t3 = token_for(u3, secret);
    const std::string agent = std::string("/api/agents/") + a1;
    auto names = [](const answer& a) {
        std::vector<std::string> out;
        const auto parsed = json::parse(a.body);
        for (const auto& x : parsed.at("data").as_array()) out.emplace_back(x.at("name").as_string());
        return out;
    };

    CHECK(authorized_get(client, "/api/agents", t1).x_cache == "MISS");
    CHECK(authorized_get(client, "/api/agents", t1).x_cache == "HIT");
    CHECK(authorized_get(client, "/api/agents", t3).x_cache == "MISS");
    const auto fills = agents_fills(admin);

    SECTION("accepted (200): the next GET is a fill with the new name; the other user's entry stays") {
        CHECK(patch(client, agent, t1, R"({"name":"Renamed"})") == 200);
        const auto after = authorized_get(client, "/api/agents", t1);
        CHECK(after.x_cache == "MISS");
        const auto now = names(after);
        CHECK(std::find(now.begin(), now.end(), "Renamed") != now.end());
        CHECK(std::find(now.begin(), now.end(), "Zed") == now.end());
        CHECK(agents_fills(admin) == fills + 1);
        CHECK(write_invalidations(admin) == 1);
        CHECK(authorized_get(client, "/api/agents", t3).x_cache == "HIT");
    }
    SECTION("refused (400, nothing to change; 404, unknown agent): the next GET is a HIT") {
        CHECK(patch(client, agent, t1, "{}") == 400);
        CHECK(patch(client, "/api/agents/a0000000-0000-4000-8000-0000000000ff", t1, R"({"name":"N"})") ==
              404);
        CHECK(authorized_get(client, "/api/agents", t1).x_cache == "HIT");
        CHECK(agents_fills(admin) == fills);
        CHECK(write_invalidations(admin) == 0);
    }
}
