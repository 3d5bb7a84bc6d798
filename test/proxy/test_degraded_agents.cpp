// GET /api/agents while the external agent API is down: the answer comes at
// once with the agents degraded ("unavailable") and is cached (at most
// route.degraded_ttl); once the API is back, the client's recovery probe (the
// breaker's half-open trial, every quarter of breaker.cool_down while agents
// are degraded) sees it and the degraded answers are dropped, so within 1 s a
// request gets the complete answer, long before degraded_ttl.
#include "auth/verifier.hpp"
#include "db/pg_test_db.ipp"
#include "db/pool.hpp"
#include "db/run_sync.hpp"
#include "proxy/application.hpp"
#include "proxy/server.hpp"
#include "support/child_process.hpp"
#include "support/listener_up.hpp"
#include "support/test_client.hpp"
#include "support/test_config.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <ctime>
#include <utility>

using namespace sidecache;
using namespace sidecache::test;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

struct agents_answer {
    unsigned status = 0;
    std::string x_cache;
    std::size_t ok = 0, missing = 0, unavailable = 0, with_id = 0;
};

agents_answer get_agents(test_client& client, const std::string& token) {
    client.send(get_request("/api/agents", "Authorization: Bearer " + token + "\r\n"));
    auto r = client.read_response();
    REQUIRE(r.has_value());
    agents_answer a{r->status, r->header("X-Cache")};
    INFO(r->body);
    REQUIRE(a.status == 200);
    const auto body = json::parse(r->body);
    for (const auto& agent : body.at("data").as_array()) {
        const auto status = agent.at("configStatus").as_string();
        if (agent.at("elevenLabsAgentId").is_string()) ++a.with_id;
        a.ok += status == "ok";
        a.missing += status == "missing";  // agent_gone_* ids: the API says 404
        a.unavailable += status == "unavailable";
    }
    return a;
}

void configure_mock(std::uint16_t port, const std::string& settings) {
    test_client mock(port);
    mock.send(
        "POST /__mock/config HTTP/1.1\r\nHost: mock\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(settings.size()) + "\r\n\r\n" + settings);
    auto r = mock.read_response();
    REQUIRE(r);
    REQUIRE(r->status == 200);
}

// Asks back to back until `done` holds or `within` passes: each answer is
// the event waited for. Returns the last answer and when it came.
template <class Done>
std::pair<agents_answer, std::chrono::steady_clock::time_point> until(test_client& client, const std::string& token,
                                                                      std::chrono::milliseconds within, Done done) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
        auto a = get_agents(client, token);
        const auto now = std::chrono::steady_clock::now();
        if (done(a) || now > deadline) return {a, now};
    }
}

}  // namespace

TEST_CASE("a degraded agents answer is dropped once the external API answers again [pg]", "[pg]") {
    auto db = pg_test_db::create(false);
    if (!db) return;
    const auto src = source_dir();
    if (!node_stand_ins_available(src)) return;
    run_command("node " + src + "/test/data/generate.js --database-url '" + db->url() +
                "' --preset small --seed 3 >/dev/null");
    REQUIRE(db->migrate(false) == 0);
    // The active user with the most agents that have a plain ElevenLabs id.
    const auto user = db->sql(
        "SELECT a.user_id FROM agents a JOIN users u ON u.id = a.user_id WHERE u.is_active "
        "AND a.elevenlabs_agent_id LIKE 'agent\\_%' AND a.elevenlabs_agent_id NOT LIKE 'agent\\_gone\\_%' "
        "GROUP BY a.user_id ORDER BY count(*) DESC, a.user_id LIMIT 1");
    REQUIRE(!user.empty());

    child_process mock("node " + src +
                       "/test/mocks/elevenlabs.js --port 0 --latency-ms 0 --jitter-ms 0 --api-key test-elevenlabs-key");
    const auto mock_port = mock.listening_port();
    configure_mock(mock_port, R"({"down": true})");

    // Nothing listens on port 1: the routes' fallback is never needed here.
    auto cfg = test_config(1);
    cfg.auth.jwt_secret = "s";
    cfg.cache.enabled = true;
    conf::route_config route;
    route.name = "agents";
    route.path = "/api/agents";
    route.fill = conf::fill_kind::postgres;
    route.query = "agents";
    route.enrich_agents = true;
    route.ttl = 60s;
    route.stale_while_revalidate = 60s;
    route.degraded_ttl = 10s;  // the default: not what ends the degraded answer
    cfg.cache.routes.push_back(route);
    cfg.database.url = db->url();
    cfg.database.queries_dir = src + "/db/queries";
    cfg.database.refresh_interval = conf::duration{0};
    cfg.external.url.host = "127.0.0.1";
    cfg.external.url.port = mock_port;
    cfg.external.url.text = "http://127.0.0.1:" + std::to_string(mock_port);
    cfg.external.api_key = "test-elevenlabs-key";
    REQUIRE(cfg.external.breaker.cool_down == 500ms);  // the default

    proxy::application app(cfg);
    app.start();
    REQUIRE(run_sync(app.database()->wait_ready(std::chrono::steady_clock::now() + 10s)));
    REQUIRE(wait_listener_up(app, 10s));
    const auto token = auth::sign_hs256(
        R"({"sub":")" + user + R"(","exp":)" + std::to_string(std::time(nullptr) + 600) + "}", "s");
    test_client client(app.server().port());

    // Down: answered within the deadline, every agent with an id unavailable.
    auto degraded = get_agents(client, token);
    REQUIRE(degraded.with_id > 0);
    CHECK(degraded.unavailable == degraded.with_id);
    CHECK(degraded.x_cache == "MISS");
    CHECK(get_agents(client, token).x_cache == "HIT");  // cached, briefly

    configure_mock(mock_port, R"({"down": false})");
    const auto back = std::chrono::steady_clock::now();
    // Within 1 s of the API's return a request gets the complete answer: the
    // degraded entry was dropped (a miss, filled anew), not waited out.
    auto [complete, at] = until(client, token, 3s, [](const agents_answer& a) { return a.unavailable == 0; });
    CHECK(complete.unavailable == 0);
    CHECK(at - back < 1s);
    CHECK(complete.x_cache == "MISS");
    CHECK(complete.ok + complete.missing == complete.with_id);
    CHECK(complete.ok > 0);
    CHECK(get_agents(client, token).x_cache == "HIT");  // the complete one is cached
    app.drain(1s);
}
