// GET /metrics on the admin listener of a running sidecache: the Prometheus
// text format, counters that move by exactly what clients did, the same
// figures as /stats, and promtool's verdict on the whole exposition.

#include "proxy/application.hpp"
#include "proxy/server.hpp"
#include "support/admin_stats.hpp"
#include "support/authorized_get.hpp"
#include "support/test_client.hpp"
#include "support/test_config.hpp"
#include "support/test_upstream.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

using namespace sidecache;
using namespace sidecache::test;

namespace {

constexpr const char* secret = "metrics-test-secret";
constexpr const char* overview = "/api/dashboard/overview";

struct exposition {
    std::string content_type;
    std::string text;
    std::map<std::string, double> series;  // "name{labels}" -> value

    // A series that is not exposed fails the test.
    double at(const std::string& key) const {
        INFO("series " << key);
        const auto it = series.find(key);
        REQUIRE(it != series.end());
        return it->second;
    }
};

exposition scrape(std::uint16_t admin_port) {
    test_client admin(admin_port);
    admin.send(get_request("/metrics"));
    auto r = admin.read_response();
    REQUIRE(r.has_value());
    REQUIRE(r->status == 200);
    exposition e{r->header("Content-Type"), r->body, {}};
    std::size_t start = 0;
    while (start < e.text.size()) {
        auto end = e.text.find('\n', start);
        REQUIRE(end != std::string::npos);  // every line ends with a newline
        const auto line = e.text.substr(start, end - start);
        start = end + 1;
        if (line.empty() || line[0] == '#') continue;
        const auto space = line.rfind(' ');
        REQUIRE(space != std::string::npos);
        e.series[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    return e;
}

scripted_response legacy_answer(const recorded_request& req) {
    scripted_response r;
    r.headers = {{"Content-Type", "application/json; charset=utf-8"}};
    r.body = R"({"success":true,"data":{"target":")" + req.target + "\"}}";
    return r;
}

// One cached route (overview, filled by the legacy), the admin listener on.
conf::config overview_config(std::uint16_t legacy_port) {
    auto cfg = test_config(legacy_port);
    cfg.auth.jwt_secret = secret;
    cfg.cache.enabled = true;
    conf::route_config route;
    route.name = "overview";
    route.path = overview;
    route.fill = conf::fill_kind::upstream;
    route.utc_day_bound = false;
    route.wait_timeout = conf::duration{10'000};
    cfg.cache.routes.push_back(route);
    return cfg;
}

std::uint64_t stats_counter(std::uint16_t admin_port, std::initializer_list<const char*> path) {
    const auto stats = admin_stats(admin_port);
    const boost::json::value* v = &stats.at(*path.begin());
    for (auto it = path.begin() + 1; it != path.end(); ++it) v = &v->as_object().at(*it);
    return v->to_number<std::uint64_t>();
}

// `promtool check metrics` on `text`: its exit status and what it printed.
std::pair<int, std::string> promtool_check(const std::string& text) {
    const auto file = std::filesystem::temp_directory_path() / ("sc_metrics_" + std::to_string(::getpid()));
    std::ofstream(file) << text;
    const auto command = "promtool check metrics < " + file.string() + " 2>&1";
    std::string output;
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buffer[4096];
    while (auto n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
    const int status = ::pclose(pipe);
    std::filesystem::remove(file);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

bool promtool_installed() {
    return std::system("command -v promtool >/dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("/metrics counts N hits and misses through a real sidecache exactly", "[integration]") {
    test_upstream legacy(legacy_answer);
    proxy::application app(overview_config(legacy.port()));
    app.start();
    const auto admin = app.server().admin_port();

    const auto before = scrape(admin);
    CHECK(before.content_type == "text/plain; version=0.0.4; charset=utf-8");
    const auto hits_before = stats_counter(admin, {"cache", "routes", "overview", "hits"});

    // 3 users: one miss each, then 7 hits; one request without a token
    // (bypass, forwarded) and one on a path that is not cached (forwarded).
    constexpr int users = 3, hits = 7;
    test_client client(app.server().port());
    std::vector<std::string> tokens;
    for (int u = 0; u < users; ++u) {
        tokens.push_back(token_for("user-" + std::to_string(u), secret));
        CHECK(authorized_get(client, overview, tokens.back()).x_cache == "MISS");
    }
    for (int i = 0; i < hits; ++i) CHECK(authorized_get(client, overview, tokens[i % users]).x_cache == "HIT");
    client.send(get_request(overview));
    auto bypassed = client.read_response();
    REQUIRE(bypassed);
    CHECK(bypassed->status == 200);
    client.send(get_request("/api/not-cached"));
    auto forwarded = client.read_response();
    REQUIRE(forwarded);
    CHECK(forwarded->status == 200);
    CHECK(legacy.requests() == users + 2);

    const auto after = scrape(admin);
    auto moved = [&](const std::string& key) { return after.at(key) - before.at(key); };
    CHECK(moved(R"(sidecache_cache_results_total{route="overview",result="hit"})") == hits);
    CHECK(moved(R"(sidecache_cache_results_total{route="overview",result="miss"})") == users);
    CHECK(moved(R"(sidecache_cache_results_total{route="overview",result="bypass"})") == 1);
    CHECK(moved(R"(sidecache_cache_results_total{route="overview",result="stale"})") == 0);
    CHECK(moved(R"(sidecache_cache_fills_total{route="overview"})") == users);
    CHECK(moved(R"(sidecache_requests_total{route="overview",code="2xx"})") == users + hits);
    CHECK(moved(R"(sidecache_requests_total{route="overview",code="5xx"})") == 0);
    CHECK(moved(R"(sidecache_request_duration_seconds_count{route="overview"})") == users + hits);
    CHECK(moved(R"(sidecache_request_duration_seconds_bucket{route="overview",le="+Inf"})") == users + hits);
    CHECK(moved(R"(sidecache_requests_total{route="passthrough",code="2xx"})") == 2);
    CHECK(moved(R"(sidecache_request_duration_seconds_count{route="passthrough"})") == 2);
    CHECK(moved(R"(sidecache_requests_handled_total{by="cache"})") == users + hits);
    CHECK(moved(R"(sidecache_requests_handled_total{by="upstream"})") == 2);
    CHECK(moved("sidecache_requests_read_total") == users + hits + 2);
    CHECK(moved(R"(sidecache_fill_duration_seconds_count{source="legacy"})") == users);
    CHECK(moved(R"(sidecache_fill_duration_seconds_count{source="postgres"})") == 0);
    CHECK(after.at(R"(sidecache_cache_entries{route="overview"})") == users);
    CHECK(after.at(R"(sidecache_cache_bytes{route="overview"})") > 0);
    CHECK(after.text.find("\nsidecache_build_info{version=\"") != std::string::npos);
    CHECK(after.text.find("\nsidecache_build_info{version=\"\"}") == std::string::npos);
    // The upstream pool: the fills and the pass-throughs each used a connection.
    CHECK(after.at("sidecache_upstream_connects_total") + after.at("sidecache_upstream_reuses_total") >=
          users + 2);

    // /stats renders the same registry.
    CHECK(stats_counter(admin, {"cache", "routes", "overview", "hits"}) - hits_before == hits);
    CHECK(stats_counter(admin, {"cache", "routes", "overview", "bypass"}) == 1);
    CHECK(stats_counter(admin, {"proxy", "intercepted"}) ==
          after.at(R"(sidecache_requests_handled_total{by="cache"})"));
}

TEST_CASE("promtool check metrics accepts the whole /metrics of a sidecache with every module", "[integration]") {
    if (!promtool_installed()) {
        if (const char* skip = std::getenv("SIDECACHE_SKIP_PROMTOOL"); skip && std::string(skip) == "1") {
            WARN("promtool not installed: skipped (SIDECACHE_SKIP_PROMTOOL=1)");
            return;
        }
        FAIL("promtool not found: install Debian's prometheus package (scripts/bootstrap), "
             "or set SIDECACHE_SKIP_PROMTOOL=1 to skip this test");
    }
    test_upstream legacy(legacy_answer);
    auto cfg = overview_config(legacy.port());
    // Every module declared: a database (unreachable: its series exist all the
    // same) with its listener, the external agent API on a route that enriches.
    cfg.database.url = "postgresql://postgres@127.0.0.1:1/none?connect_timeout=1";
    cfg.database.queries_dir = std::string(SIDECACHE_SOURCE_DIR) + "/db/queries";
    cfg.database.refresh_interval = conf::duration{0};
    cfg.cache.warmup.enabled = true;
    cfg.cache.routes[0].enrich_agents = true;
    cfg.external.url.scheme = "http";
    cfg.external.url.host = "127.0.0.1";
    cfg.external.url.port = 1;
    cfg.external.url.text = "http://127.0.0.1:1";
    cfg.external.api_key = "k";
    proxy::application app(cfg);
    app.start();
    REQUIRE(app.database() != nullptr);
    REQUIRE(app.external() != nullptr);

    // Some traffic, so that histograms and labelled series have samples.
    test_client client(app.server().port());
    const auto token = token_for("user-1", secret);
    CHECK(authorized_get(client, overview, token).status == 200);
    CHECK(authorized_get(client, overview, token).status == 200);
    client.send(get_request("/elsewhere"));
    REQUIRE(client.read_response());

    const auto e = scrape(app.server().admin_port());
    for (const char* family : {"sidecache_postgres_up", "sidecache_postgres_waits_total",
                               "sidecache_listener_up", "sidecache_listener_heartbeat_age_seconds",
                               "sidecache_external_tries_total", "sidecache_refresh_failures_total",
                               "sidecache_upstream_connects_total", "sidecache_cache_max_bytes",
                               "sidecache_midnight_refill_entries_total", "sidecache_midnight_refill_runs_total",
                               "sidecache_postgres_statement_timeouts_total", "sidecache_postgres_queue_timeouts_total",
                               "sidecache_postgres_reconnect_waits_total", "sidecache_postgres_retries_total",
                               "sidecache_listener_heartbeats_overdue_total", "sidecache_warmup_passes_total",
                               "sidecache_warmup_entries_total", "sidecache_warmup_running"}) {
        INFO(family);
        CHECK(e.text.find(std::string("# TYPE ") + family + " ") != std::string::npos);
    }
    CHECK(e.at(R"(sidecache_external_breaker_state{state="closed"})") +
              e.at(R"(sidecache_external_breaker_state{state="open"})") +
              e.at(R"(sidecache_external_breaker_state{state="half_open"})") ==
          1);
    const auto [status, output] = promtool_check(e.text);
    INFO("promtool said:\n" << output);
    CHECK(status == 0);
    CHECK(output.empty());
}
