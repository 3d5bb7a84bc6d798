// The acceptance: for EVERY user of the `small` dataset, the fills' JSON equals
// the legacy stand-in's (test/legacy/server.js), parsed, numbers by value,
// data.cacheInfo ignored; for agents every field but elevenLabs/configStatus
// (the enrichment's part). A difference prints the user, the endpoint and the
// first differing JSON path.
#include "db/error.hpp"
#include "db/json_diff.hpp"
#include "db/pg_test_db.ipp"
#include "db/pool.hpp"
#include "db/run_sync.hpp"
#include "support/child_process.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include <cstdio>
#include <regex>
#include <sstream>

using namespace sidecache;
using namespace sidecache::test;
namespace json = boost::json;
namespace http = boost::beast::http;
using std::chrono::steady_clock;

namespace {

std::string http_get(unsigned short port, const std::string& target, const std::string& token) {
    boost::asio::io_context ioc;
    boost::beast::tcp_stream s(ioc);
    s.expires_after(std::chrono::seconds(60));
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + token);
    http::write(s, req);
    boost::beast::flat_buffer b;
    http::response<http::string_body> res;
    http::read(s, b, res);
    INFO(target << " " << res.result_int() << " " << res.body());
    REQUIRE(res.result_int() == 200);
    return res.body();
}

std::string node() {
    return "node";
}

}  // namespace

TEST_CASE("fills equal the legacy's answers for every user of the small dataset [pg]", "[pg]") {
    auto db = pg_test_db::create(false);
    if (!db) return;
    auto src = source_dir();
    if (!node_stand_ins_available(src)) return;
    run_command(node() + " " + src + "/test/data/generate.js --database-url '" + db->url() +
                "' --preset small --seed 42 >/dev/null");
    REQUIRE(db->migrate(false) == 0);
    REQUIRE(db->refresh() == 0);
    // Late changes after the refresh: the marked path must be exact too.
    db->sql(
        "UPDATE calls SET status = 'completed' WHERE id IN ("
        "SELECT id FROM calls WHERE created_at < now() - interval '3 days' ORDER BY id LIMIT 20)");

    child_process mock(node() + " " + src +
                       "/test/mocks/elevenlabs.js --port 0 --latency-ms 0 --jitter-ms 0 --api-key k");
    auto mock_port = mock.listening_port();
    child_process legacy(node() + " " + src + "/test/legacy/server.js --port 0 --database-url '" + db->url() +
                         "' --jwt-secret s3cret --elevenlabs-url http://127.0.0.1:" +
                         std::to_string(mock_port) + " --elevenlabs-key k");
    auto legacy_port = legacy.listening_port();

    std::istringstream tokens(run_command(
        node() + " " + src + "/test/data/mint.js --secret s3cret --all --database-url '" + db->url() + "'"));
    conf::database_config cfg;
    cfg.url = db->url();
    cfg.queries_dir = src + "/db/queries";
    cfg.refresh_interval = std::chrono::milliseconds(0);
    db::pool p(cfg);
    p.start();
    REQUIRE(run_sync(p.wait_ready(steady_clock::now() + std::chrono::seconds(10))));

    struct endpoint {
        const char* query;
        const char* path;
    };
    const endpoint endpoints[] = {{"overview", "/api/dashboard/overview"},
                                  {"analytics", "/api/dashboard/analytics"},
                                  {"agents", "/api/agents"}};
    auto skip = [](const std::string& path) {
        if (path == "data.cacheInfo") return true;
        static const std::regex external(R"(data\[\d+\]\.(elevenLabs|configStatus))");
        return std::regex_match(path, external);
    };
    int users = 0, compared = 0;
    for (std::string line; std::getline(tokens, line);) {
        auto tab = line.find('\t');
        if (tab == std::string::npos) continue;
        auto user = line.substr(0, tab), token = line.substr(tab + 1);
        ++users;
        for (auto e : endpoints) {
            auto mine = run_sync(p.query_json(e.query, user, steady_clock::now() + std::chrono::seconds(5)));
            INFO("user " << user << " endpoint " << e.path);
            REQUIRE(mine.has_value());
            auto theirs = http_get(legacy_port, e.path, token);
            auto diff = json_diff(json::parse(*mine), json::parse(theirs), skip);
            INFO("first difference (sidecache vs legacy): " << diff.value_or(""));
            CHECK_FALSE(diff.has_value());
            ++compared;
        }
    }
    CHECK(users >= 50);
    CHECK(compared == 3 * users);
    p.stop();
}
