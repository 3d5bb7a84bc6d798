// The main job end to end, through the whole sidecache: the example
// configuration, PostgreSQL fills over sidecache's migrations, the agents
// enrichment from the external-API mock, in front of the legacy stand-in.
// For EVERY user of the `small` dataset and each of the three endpoints,
// sidecache's answer equals the legacy's (parsed JSON, numbers by value,
// data.cacheInfo apart: `cached` is false on the miss, true on the hit;
// elevenLabs and configStatus compared too), on the miss and again on the
// hit. Users the legacy refuses (inactive) get its 403.
#include "auth/verifier.hpp"
#include "conf/loader.hpp"
#include "db/json_diff.hpp"
#include "db/pg_test_db.ipp"
#include "proxy/application.hpp"
#include "proxy/server.hpp"
#include "support/authorized_get.hpp"
#include "support/child_process.hpp"
#include "support/listener_up.hpp"
#include "support/test_client.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <ctime>
#include <map>
#include <sstream>

using namespace sidecache;
using namespace sidecache::test;
namespace json = boost::json;

TEST_CASE("sidecache answers every user of the small dataset as the legacy does [pg]", "[pg]") {
    auto db = pg_test_db::create(false);
    if (!db) return;
    const auto src = source_dir();
    if (!node_stand_ins_available(src)) return;

    run_command("node " + src + "/test/data/generate.js --database-url '" + db->url() +
                "' --preset small --seed 7 >/dev/null");
    REQUIRE(db->migrate(false) == 0);
    REQUIRE(db->refresh() == 0);

    const std::string secret = "e2e-secret";
    child_process mock("node " + src +
                       "/test/mocks/elevenlabs.js --port 0 --latency-ms 0 --jitter-ms 0 --api-key test-elevenlabs-key");
    const auto mock_port = mock.listening_port();
    child_process legacy(
        "node " + src + "/test/legacy/server.js --port 0 --database-url '" + db->url() + "' --jwt-secret " +
        secret + " --elevenlabs-url http://127.0.0.1:" + std::to_string(mock_port) + " --elevenlabs-key test-elevenlabs-key");
    const auto legacy_port = legacy.listening_port();

    // The example configuration, with the deployment's environment.
    const std::map<std::string, std::string, std::less<>> env = {
        {"SIDECACHE_LISTEN", "127.0.0.1:0"},
        {"SIDECACHE_ADMIN_LISTEN", "127.0.0.1:0"},
        {"LEGACY_URL", "http://127.0.0.1:" + std::to_string(legacy_port)},
        {"DATABASE_URL", db->url()},
        {"JWT_SECRET", secret},
        {"ELEVENLABS_URL", "http://127.0.0.1:" + std::to_string(mock_port)},
        {"ELEVENLABS_API_KEY", "test-elevenlabs-key"},
    };
    auto cfg = conf::load_file(src + "/conf/sidecache.example.yaml",
                               [&](std::string_view name) -> std::optional<std::string> {
                                   if (auto it = env.find(name); it != env.end()) return it->second;
                                   return std::nullopt;
                               });
    cfg.database.queries_dir = src + "/db/queries";
    cfg.database.migrations_dir = src + "/db/migrations";
    proxy::application app(cfg);
    app.start();
    REQUIRE(wait_listener_up(app, std::chrono::seconds(10)));
    const auto port = app.server().port();

    const char* endpoints[] = {"/api/dashboard/overview", "/api/dashboard/analytics", "/api/agents"};
    auto skip = [](const std::string& path) { return path == "data.cacheInfo"; };

    std::istringstream users(
        db->sql("SELECT string_agg(id::text || ':' || is_active::text, ',' ORDER BY id) FROM users"));
    test_client to_sidecache(port, std::chrono::seconds(30));
    test_client to_legacy(legacy_port, std::chrono::seconds(30));
    int active = 0, inactive = 0;
    for (std::string item; std::getline(users, item, ',');) {
        const auto user = item.substr(0, item.find(':'));
        const bool is_active = item.substr(item.find(':') + 1) == "true";
        const auto token = token_for(user, secret);
        (is_active ? active : inactive) += 1;
        for (const char* endpoint : endpoints) {
            INFO("user " << user << " endpoint " << endpoint);
            const auto theirs = authorized_get(to_legacy, endpoint, token);
            const auto miss = authorized_get(to_sidecache, endpoint, token);
            const auto hit = authorized_get(to_sidecache, endpoint, token);
            INFO("sidecache: " << miss.body << "\nlegacy: " << theirs.body);
            REQUIRE(miss.status == theirs.status);
            REQUIRE(hit.status == theirs.status);
            if (theirs.status != 200) {
                // Refused by the legacy (inactive user): forwarded, never cached.
                CHECK(miss.body == theirs.body);
                CHECK(hit.x_cache != "HIT");
                continue;
            }
            CHECK(miss.x_cache == "MISS");
            CHECK(hit.x_cache == "HIT");
            for (const auto* mine : {&miss, &hit}) {
                auto diff = json_diff(json::parse(mine->body), json::parse(theirs.body), skip);
                INFO("first difference (sidecache vs legacy): " << diff.value_or(""));
                CHECK_FALSE(diff.has_value());
            }
            // Where the answer has cacheInfo (overview), it tells the truth:
            // the fill's answer was computed now, the hit comes from the cache.
            const auto legacy_body = json::parse(theirs.body);
            const auto* data = legacy_body.at("data").if_object();
            if (const auto* info = data ? data->if_contains("cacheInfo") : nullptr) {
                CHECK(info->at("cached") == false);
                CHECK(json::parse(miss.body).at_pointer("/data/cacheInfo/cached") == false);
                CHECK(json::parse(hit.body).at_pointer("/data/cacheInfo/cached") == true);
            }
        }
    }
    CHECK(active >= 50);
    CHECK(inactive >= 1);
    app.drain(std::chrono::seconds(2));
}
