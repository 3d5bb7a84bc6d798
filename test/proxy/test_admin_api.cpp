// The admin API seen from an operator's client: admin.token, POST /purge,
// GET /config, GET /healthz and /readyz. A proxy::application in-process
// (upstream fills, no database) in front of the scripted test upstream,
// whose every answer is numbered, so a body says which fill produced it.

#include "auth/verifier.hpp"
#include "cache/service.hpp"
#include "proxy/application.hpp"
#include "proxy/server.hpp"
#include "support/test_client.hpp"
#include "support/test_config.hpp"
#include "support/test_upstream.hpp"
#include "support/within.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace sidecache;
using namespace std::chrono_literals;
using test::client_response;
using test::get_request;
using test::recorded_request;
using test::scripted_response;
using test::test_client;
using test::test_upstream;
namespace json = boost::json;

namespace {

constexpr std::string_view secret = "admin-api-jwt-secret";
constexpr std::string_view admin_token = "admin-api-token-7f3a9c";
constexpr std::string_view overview = "/api/dashboard/overview";
constexpr std::string_view analytics = "/api/dashboard/analytics";

std::string token_for(std::string_view user) {
    const auto exp = std::time(nullptr) + 3600;
    return auth::sign_hs256(fmt::format(R"({{"sub":"{}","exp":{}}})", user, exp), secret);
}

conf::route_config route(std::string name, std::string_view path) {
    conf::route_config r;
    r.name = std::move(name);
    r.path = std::string(path);
    r.fill = conf::fill_kind::upstream;
    r.utc_day_bound = false;  // a run across midnight must not turn entries stale
    r.ttl = 60s;
    r.stale_while_revalidate = 60s;
    r.wait_timeout = 20s;
    return r;
}

// The upstream (answer n to the nth request), the application, and clients.
struct harness {
    std::atomic<int> answered{0};
    // Set by a test to hold an upstream answer: the handler (on the
    // upstream's one thread) waits until it is false again, up to 20 s.
    std::atomic<bool> hold{false};
    test_upstream up{[this](const recorded_request& req) {
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (hold && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
        scripted_response r;
        r.headers = {{"Content-Type", "application/json; charset=utf-8"}};
        r.body = fmt::format(R"({{"target":"{}","n":{}}})", req.target, ++answered);
        return r;
    }};
    std::unique_ptr<proxy::application> app;

    explicit harness(std::string token = std::string(admin_token)) {
        auto cfg = test::test_config(up.port());
        cfg.auth.jwt_secret = std::string(secret);
        cfg.admin.token = std::move(token);
        cfg.upstream.response_timeout = conf::duration{30'000};
        cfg.cache.enabled = true;
        cfg.cache.routes = {route("overview", overview), route("analytics", analytics)};
        app = std::make_unique<proxy::application>(std::move(cfg));
        app->start();
    }

    std::uint16_t port() { return app->server().port(); }
    std::uint16_t admin_port() { return app->server().admin_port(); }

    // One admin request; `authorization` is the whole header value, none when empty.
    client_response admin(std::string_view method, std::string_view target, std::string_view body = {},
                          std::string_view authorization = {}) {
        std::string head = fmt::format("{} {} HTTP/1.1\r\nHost: admin\r\n", method, target);
        if (!authorization.empty()) head += fmt::format("Authorization: {}\r\n", authorization);
        if (method == "POST")
            head += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
        test_client c(admin_port());
        c.send(head + "\r\n" + std::string(body));
        auto r = c.read_response(method == "HEAD");
        REQUIRE(r.has_value());
        return *r;
    }
    client_response authorized(std::string_view method, std::string_view target, std::string_view body = {}) {
        return admin(method, target, body, fmt::format("Bearer {}", admin_token));
    }

    // POST /purge answered 200: its "entries".
    std::int64_t purge(std::string_view body) {
        auto r = authorized("POST", "/purge", body);
        INFO(body << " -> " << r.status << " " << r.body);
        REQUIRE(r.status == 200);
        return json::parse(r.body).at("entries").as_int64();
    }

    // GET `path` as `user` on a fresh connection.
    client_response get(std::string_view path, std::string_view user) {
        test_client c(port());
        c.send(get_request(path, fmt::format("Authorization: Bearer {}\r\n", token_for(user))));
        auto r = c.read_response();
        REQUIRE(r.has_value());
        REQUIRE(r->status == 200);
        return *r;
    }
    std::string x_cache(std::string_view path, std::string_view user) { return get(path, user).header("X-Cache"); }

    std::uint64_t counter(std::string_view route_name, std::string_view name) {
        return app->cache()->stats().at("routes").at(route_name).at(name).to_number<std::uint64_t>();
    }
};

}  // namespace

TEST_CASE("with admin.token, every admin request but liveness needs the bearer token", "[integration]") {
    harness h;
    for (std::string_view path : {"/stats", "/ready", "/readyz", "/config", "/nowhere"}) {
        CAPTURE(path);
        for (std::string_view authorization :
             {std::string_view{}, std::string_view{"Bearer admin-api-token-7f3a9d"},  // one byte off
              std::string_view{"Bearer admin-api-token-7f3a9c0"},                     // longer
              std::string_view{"Bearer admin"},                                       // a prefix
              std::string_view{"Bearer "}, std::string_view{"Basic YWRtaW46YWRtaW4="},
              std::string_view{"admin-api-token-7f3a9c"}}) {
            CAPTURE(authorization);
            auto r = h.admin("GET", path, {}, authorization);
            CHECK(r.status == 401);
            CHECK(r.header("WWW-Authenticate").starts_with("Bearer"));
            CHECK(r.body.find("admin-api-token") == std::string::npos);
        }
    }
    auto denied = h.admin("POST", "/purge", R"({"all": true})", "Bearer wrong");
    CHECK(denied.status == 401);

    // The right token, in either case of the scheme.
    CHECK(h.authorized("GET", "/stats").status == 200);
    CHECK(h.admin("GET", "/stats", {}, fmt::format("bearer {}", admin_token)).status == 200);
    CHECK(h.authorized("GET", "/ready").body == "ready\n");
    CHECK(h.authorized("GET", "/nowhere").status == 404);

    // Liveness answers anyone: a kubelet has no token.
    for (std::string_view path : {"/live", "/healthz"}) {
        auto r = h.admin("GET", path);
        CHECK(r.status == 200);
        CHECK(r.body == "live\n");
    }
}

TEST_CASE("without admin.token the admin API answers everyone, as before", "[integration]") {
    harness h("");
    CHECK(h.admin("GET", "/stats").status == 200);
    CHECK(h.admin("GET", "/ready").body == "ready\n");
    CHECK(h.admin("GET", "/healthz").body == "live\n");
    CHECK(h.admin("POST", "/purge", R"({"all": true})").status == 200);
}

TEST_CASE("POST /purge of a user, a route, a tag or everything: the entries it hit, the next request a MISS",
          "[integration]") {
    harness h;
    // Four entries: u1 and u2 on both routes, each filled once, then hits.
    for (auto path : {overview, analytics}) {
        for (auto user : {"u1", "u2"}) {
            REQUIRE(h.x_cache(path, user) == "MISS");
            REQUIRE(h.x_cache(path, user) == "HIT");
        }
    }
    REQUIRE(h.answered == 4);

    struct expectation {
        std::string body;
        std::int64_t entries;
        std::vector<std::pair<std::string_view, std::string_view>> missed;  // path, user
    };
    const auto e = GENERATE(
        expectation{R"({"user": "u1"})", 2, {{overview, "u1"}, {analytics, "u1"}}},
        expectation{R"({"route": "overview", "mode": "hard"})", 2, {{overview, "u1"}, {overview, "u2"}}},
        expectation{R"({"tag": "user:u2"})", 2, {{overview, "u2"}, {analytics, "u2"}}},
        expectation{R"({"all": true})", 4, {{overview, "u1"}, {overview, "u2"}, {analytics, "u1"}, {analytics, "u2"}}},
        expectation{R"({"user": "nobody"})", 0, {}});
    CAPTURE(e.body);
    CHECK(h.purge(e.body) == e.entries);

    for (auto path : {overview, analytics}) {
        for (std::string_view user : {"u1", "u2"}) {
            CAPTURE(path, user);
            const bool purged = std::find(e.missed.begin(), e.missed.end(), std::pair{path, user}) != e.missed.end();
            auto r = h.get(path, user);
            CHECK(r.header("X-Cache") == (purged ? "MISS" : "HIT"));
            CHECK(r.header("Cache-Status").find(purged ? "fwd=miss" : "hit") != std::string::npos);
        }
    }
    CHECK(h.answered == 4 + static_cast<int>(e.missed.size()));
    // Refilled: hits again.
    for (const auto& [path, user] : e.missed) CHECK(h.x_cache(path, user) == "HIT");
}

TEST_CASE("POST /purge with mode soft serves the purged entries stale once while one refill runs",
          "[integration]") {
    harness h;
    for (auto user : {"u1", "u2"}) {
        REQUIRE(h.x_cache(overview, user) == "MISS");
        REQUIRE(h.x_cache(overview, user) == "HIT");
    }
    const auto before = h.get(overview, "u1").body;
    CHECK(h.purge(R"({"user": "u1", "mode": "soft"})") == 1);

    auto stale = h.get(overview, "u1");
    CHECK(stale.header("X-Cache") == "STALE");
    CHECK(stale.body == before);  // the purged answer, served while refreshed
    CHECK(h.x_cache(overview, "u2") == "HIT");
    // The background refill replaces it.
    REQUIRE(test::within(10s, [&] { return h.answered == 3; }));
    REQUIRE(test::within(10s, [&] { return h.get(overview, "u1").header("X-Cache") == "HIT"; }));
    CHECK(h.get(overview, "u1").body != before);
    CHECK(h.answered == 3);
}

TEST_CASE("POST /purge during a fill: the fill is neither stored nor joined by a later request",
          "[integration]") {
    harness h;
    // u1's fill reaches the upstream and is held there.
    h.hold = true;
    test_client before(h.port());
    before.send(get_request(overview, fmt::format("Authorization: Bearer {}\r\n", token_for("u1"))));
    REQUIRE(h.up.wait_for_requests(1, 10s));

    CHECK(h.purge(R"({"user": "u1"})") == 0);  // nothing stored yet

    // A request after the purge starts a fill of its own (it is counted as
    // one before the first is released), it does not join the held one.
    test_client after(h.port());
    after.send(get_request(overview, fmt::format("Authorization: Bearer {}\r\n", token_for("u1"))));
    REQUIRE(test::within(10s, [&] { return h.counter("overview", "fills") == 2; }));
    CHECK(h.counter("overview", "coalesced") == 0);
    h.hold = false;

    auto first = before.read_response();
    REQUIRE(first);
    CHECK(first->body == R"({"target":"/api/dashboard/overview","n":1})");
    auto second = after.read_response();
    REQUIRE(second);
    CHECK(second->body == R"({"target":"/api/dashboard/overview","n":2})");
    CHECK(second->header("X-Cache") == "MISS");
    // What is cached is the fill that began after the purge.
    auto next = h.get(overview, "u1");
    CHECK(next.header("X-Cache") == "HIT");
    CHECK(next.body == R"({"target":"/api/dashboard/overview","n":2})");
    CHECK(h.answered == 2);
}

TEST_CASE("a malformed POST /purge gets 400 with what is wrong, and purges nothing", "[integration]") {
    harness h;
    REQUIRE(h.x_cache(overview, "u1") == "MISS");
    const auto [body, message] = GENERATE(table<std::string, std::string>({
        {"", "the body is not valid JSON"},
        {"{\"user\": ", "the body is not valid JSON"},
        {"[\"u1\"]", "the body must be a JSON object, got an array"},
        {"{}", R"(name one of "user", "route", "agent", "tag" or "all")"},
        {R"({"mode": "soft"})", R"(name one of "user", "route", "agent", "tag" or "all")"},
        {R"({"user": "u1", "route": "overview"})", R"(name exactly one of "user", "route", "agent", "tag" or "all": got "user" and "route")"},
        {R"({"route": "nope"})", R"(unknown route "nope" (cached routes: overview, analytics))"},
        {R"({"user": 42})", R"("user" must be a string, got a number)"},
        {R"({"user": ""})", R"("user" must not be empty)"},
        {R"({"all": false})", R"("all" must be true, got false)"},
        {R"({"all": "yes"})", R"("all" must be true, got a string)"},
        {R"({"user": "u1", "mode": "gentle"})", R"("mode" must be "hard" or "soft", got "gentle")"},
        {R"({"user": "u1", "mode": 1})", R"("mode" must be a string, got a number)"},
        {R"({"users": "u1"})", R"(unknown key "users")"},
        {"{\"user\": \"" + std::string(5000, 'x') + "\"}", "the body is larger than 4096 bytes"},
    }));
    CAPTURE(body);
    auto r = h.authorized("POST", "/purge", body);
    CHECK(r.status == 400);
    CHECK(r.header("Content-Type").starts_with("application/json"));
    const auto error = std::string(json::parse(r.body).at("error").as_string());
    CHECK_THAT(error, Catch::Contains(message));
    // Nothing purged, and the listener still serves.
    CHECK(h.x_cache(overview, "u1") == "HIT");
    CHECK(h.authorized("GET", "/ready").status == 200);
}

TEST_CASE("POST only for /purge, GET only for the rest", "[integration]") {
    harness h;
    auto r = h.authorized("GET", "/purge");
    CHECK(r.status == 405);
    CHECK(r.header("Allow") == "POST");
    CHECK(h.authorized("POST", "/stats", "{}").status == 405);
}

TEST_CASE("GET /config shows the effective configuration with its secrets redacted", "[integration]") {
    test_upstream up([](const recorded_request&) { return scripted_response{}; });
    auto cfg = test::test_config(up.port());
    cfg.auth.jwt_secret = "jwt-secret-value-1234";
    cfg.admin.token = "admin-token-value-5678";
    cfg.external.url = {"https", "api.example.test", 443, "", "https://api.example.test"};
    cfg.external.api_key = "xi-api-key-value-9012";
    cfg.database.url = "postgresql://app:db-password-3456@db.internal:5432/app?sslmode=require";
    cfg.database.connect_timeout = 250ms;
    cfg.database.queries_dir = SIDECACHE_SOURCE_DIR "/db/queries";
    cfg.cache.enabled = true;
    cfg.cache.routes = {route("overview", overview)};
    cfg.server.max_pipelined = 7;
    // No connection: PostgreSQL is not started (the URL is only shown).
    proxy::application app(cfg);
    app.server().start();

    test_client c(app.server().admin_port());
    c.send(get_request("/config", "Authorization: Bearer admin-token-value-5678\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    REQUIRE(r->status == 200);
    CHECK(r->header("Content-Type").starts_with("application/json"));
    for (auto s : {"jwt-secret-value-1234", "admin-token-value-5678", "xi-api-key-value-9012", "db-password-3456"}) {
        CAPTURE(s);
        CHECK(r->body.find(s) == std::string::npos);
    }
    auto got = json::parse(r->body).as_object();
    CHECK(got.at("auth").at("jwt_secret") == "[redacted]");
    CHECK(got.at("admin").at("token") == "[redacted]");
    CHECK(got.at("external").at("api_key") == "[redacted]");
    CHECK(got.at("external").at("url") == "https://api.example.test");
    CHECK(got.at("database").at("url") == "postgresql://app:[redacted]@db.internal:5432/app?sslmode=require");
    CHECK(got.at("database").at("connect_timeout") == "250ms");
    CHECK(got.at("server").at("max_pipelined") == 7);
    CHECK(got.at("upstream").at("url").as_string() == cfg.upstream.url.text);
    CHECK(got.at("cache").at("routes").at(0).at("name") == "overview");
    CHECK(got.at("cache").at("routes").at(0).at("ttl") == "1m");
}

TEST_CASE("GET /readyz turns 503 while the legacy backend refuses connections, and 200 when it is back",
          "[integration]") {
    // The legacy: a listening socket the test closes and opens again on the
    // same port (the kernel completes a TCP handshake without accept()).
    boost::asio::io_context ioc;
    using tcp = boost::asio::ip::tcp;
    auto open_legacy = [&ioc](std::uint16_t port) {
        auto a = std::make_unique<tcp::acceptor>(ioc);
        const tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), port);
        a->open(ep.protocol());
        a->set_option(tcp::acceptor::reuse_address(true));
        a->bind(ep);
        a->listen();
        return a;
    };
    auto legacy = open_legacy(0);
    const auto legacy_port = legacy->local_endpoint().port();

    auto cfg = test::test_config(legacy_port);
    cfg.upstream.health_check_interval = 100ms;
    cfg.admin.token = std::string(admin_token);
    proxy::application app(cfg);
    app.start();
    auto readyz = [&] {
        test_client c(app.server().admin_port());
        c.send(get_request("/readyz", fmt::format("Authorization: Bearer {}\r\n", admin_token)));
        auto r = c.read_response();
        REQUIRE(r);
        return *r;
    };
    auto legacy_check = [](const client_response& r) {
        return std::string(json::parse(r.body).at("checks").at("legacy").as_string());
    };

    REQUIRE(test::within(10s, [&] { return readyz().status == 200; }));
    auto up = readyz();
    CHECK(legacy_check(up) == "ok");
    CHECK(json::parse(up.body).at("ready") == true);
    CHECK(json::parse(up.body).at("checks").at("draining") == "ok");
    CHECK(json::parse(up.body).at("checks").at("listener") == "ok");
    // /ready answers as before.
    test_client ready(app.server().admin_port());
    ready.send(get_request("/ready", fmt::format("Authorization: Bearer {}\r\n", admin_token)));
    CHECK(ready.read_response()->body == "ready\n");

    legacy.reset();
    client_response down;
    REQUIRE(test::within(10s, [&] { return (down = readyz()).status == 503; }));
    CHECK(json::parse(down.body).at("ready") == false);
    CHECK_THAT(legacy_check(down), Catch::Contains(fmt::format("connect to 127.0.0.1:{}", legacy_port)));
    // Liveness is not readiness: the process is fine.
    test_client live(app.server().admin_port());
    live.send(get_request("/healthz"));
    CHECK(live.read_response()->status == 200);

    legacy = open_legacy(legacy_port);
    REQUIRE(test::within(10s, [&] { return readyz().status == 200; }));
    CHECK(app.server().admin_port() != 0);
}
