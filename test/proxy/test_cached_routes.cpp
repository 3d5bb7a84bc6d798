// The cached routes seen from clients: a proxy::application in-process (fill
// `upstream`, no database) in front of the scripted test upstream, which
// answers a body naming the user of the Authorization's token and counts
// the requests it receives.

#include "auth/verifier.hpp"
#include "cache/key.hpp"
#include "cache/service.hpp"
#include "proxy/application.hpp"
#include "proxy/server.hpp"
#include "support/test_client.hpp"
#include "support/test_config.hpp"
#include "support/test_upstream.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace sidecache;
using namespace std::chrono_literals;
using test::get_request;
using test::recorded_request;
using test::scripted_response;
using test::test_client;
using test::test_upstream;

namespace {

constexpr std::string_view secret = "wire-test-secret";
constexpr std::string_view overview = "/api/dashboard/overview";
constexpr std::string_view analytics = "/api/dashboard/analytics";
constexpr std::string_view agents = "/api/agents";

std::int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string token_for(std::string_view user, std::int64_t exp_in = 3600) {
    return auth::sign_hs256(
        fmt::format(R"({{"sub":"{}","iat":{},"exp":{}}})", user, now_s(), now_s() + exp_in), secret);
}

std::string bearer(std::string_view token) {
    return fmt::format("Authorization: Bearer {}\r\n", token);
}

// The `sub` of a bearer token, unverified (the legacy's view of who asks);
// "anonymous" when there is none.
std::string user_of(const recorded_request& req) {
    const auto auth = req.header("Authorization");
    const auto first = auth.find('.');
    const auto second = auth.find('.', first + 1);
    if (auth.rfind("Bearer ", 0) != 0 || first == std::string::npos || second == std::string::npos)
        return "anonymous";
    const auto claims = auth::base64url_decode(std::string_view(auth).substr(first + 1, second - first - 1));
    if (!claims) return "anonymous";
    boost::system::error_code ec;
    auto json = boost::json::parse(*claims, ec);
    if (ec || !json.is_object()) return "anonymous";
    const auto* sub = json.as_object().if_contains("sub");
    if (!sub || !sub->is_string()) return "anonymous";
    return std::string(sub->as_string());
}

// What the upstream answers `user` for `target`: the test checks bodies against it.
std::string body_for(std::string_view user, std::string_view target) {
    return fmt::format(R"({{"success":true,"data":{{"user":"{}","target":"{}"}}}})", user, target);
}

scripted_response per_user(const recorded_request& req) {
    scripted_response r;
    r.headers = {{"Content-Type", "application/json; charset=utf-8"}};
    r.body = body_for(user_of(req), req.target);
    return r;
}

conf::route_config route(std::string name, std::string_view path, std::vector<std::string> params = {}) {
    conf::route_config r;
    r.name = std::move(name);
    r.path = std::string(path);
    r.query_params = std::move(params);
    r.fill = conf::fill_kind::upstream;
    r.utc_day_bound = false;  // a run across midnight must not turn entries stale
    r.wait_timeout = conf::duration{10'000};
    return r;
}

// The upstream and the application in front of it, started.
struct harness {
    std::atomic<std::size_t> answered{0};
    std::function<scripted_response(const recorded_request&)> handler = per_user;
    test_upstream up{[this](const recorded_request& req) {
        auto r = handler(req);
        ++answered;
        return r;
    }};
    std::unique_ptr<proxy::application> app;

    harness() {
        auto cfg = test::test_config(up.port());
        cfg.auth.jwt_secret = std::string(secret);
        cfg.upstream.response_timeout = conf::duration{15'000};
        cfg.cache.enabled = true;
        cfg.cache.routes = {route("overview", overview), route("analytics", analytics, {"days", "tz"}),
                            route("agents", agents)};
        app = std::make_unique<proxy::application>(std::move(cfg));
        app->start();
    }

    std::uint16_t port() { return app->server().port(); }

    std::uint64_t counter(std::string_view route_name, std::string_view name) {
        auto stats = app->cache()->stats();
        return stats.at("routes").at(route_name).at(name).to_number<std::uint64_t>();
    }
};

std::string cache_status(const test::client_response& res) {
    return res.header("Cache-Status");
}

}  // namespace

TEST_CASE("two users never receive each other's bodies on shared keep-alive connections", "[integration]") {
    harness h;
    REQUIRE(h.app->cache() != nullptr);
    constexpr int users = 40;
    constexpr int connections = 4;
    constexpr int per_connection = 1200;
    std::vector<std::string> tokens;
    for (int u = 0; u < users; ++u) tokens.push_back(token_for(fmt::format("user-{:02}", u)));
    const std::vector<std::string_view> paths{overview, analytics, agents};

    // Each connection sends batches of 1..8 pipelined requests with random
    // users and routes, then reads the batch's answers in order.
    auto run = [&](unsigned seed) {
        std::mt19937 gen(seed);
        test_client client(h.port());
        std::set<std::string> keys;
        std::vector<std::string> failures;
        int sent = 0;
        while (sent < per_connection) {
            const int batch =
                std::min<int>(std::uniform_int_distribution<int>(1, 8)(gen), per_connection - sent);
            std::string bytes;
            std::vector<std::pair<int, std::string_view>> asked;
            for (int i = 0; i < batch; ++i) {
                const int u = std::uniform_int_distribution<int>(0, users - 1)(gen);
                const auto path = paths[std::uniform_int_distribution<std::size_t>(0, paths.size() - 1)(gen)];
                bytes += get_request(path, bearer(tokens[u]));
                asked.emplace_back(u, path);
                keys.insert(fmt::format("{} {}", u, path));
            }
            client.send(bytes);
            for (const auto& [u, path] : asked) {
                auto res = client.read_response();
                if (!res) {
                    failures.push_back("no answer");
                    return std::make_pair(keys, failures);
                }
                const auto want = body_for(fmt::format("user-{:02}", u), path);
                if (res->status != 200 || res->body != want)
                    failures.push_back(fmt::format("{} {} for user-{:02} {}: {}", res->status,
                                                   cache_status(*res), u, path, res->body));
            }
            sent += batch;
        }
        return std::make_pair(keys, failures);
    };

    std::vector<std::future<std::pair<std::set<std::string>, std::vector<std::string>>>> runs;
    for (int c = 0; c < connections; ++c) runs.push_back(std::async(std::launch::async, run, 100 + c));
    std::set<std::string> keys;
    std::vector<std::string> failures;
    for (auto& r : runs) {
        auto [k, f] = r.get();
        keys.insert(k.begin(), k.end());
        failures.insert(failures.end(), f.begin(), f.end());
    }
    INFO((failures.empty() ? std::string() : failures.front()));
    CHECK(failures.size() == 0);
    // Each (user, route) filled exactly once, concurrent misses included.
    CHECK(h.up.requests() == keys.size());
    CHECK(h.counter("overview", "hits") + h.counter("analytics", "hits") + h.counter("agents", "hits") >=
          connections * per_connection - 3 * keys.size());
}

TEST_CASE("500 concurrent requests for one cold key reach the upstream once and share its answer",
          "[integration]") {
    constexpr std::size_t clients = 500;
    harness h;
    // The one fill is answered once every other request waits on it (or after
    // 10 s, then the count below fails), and 200 ms later still.
    h.handler = [&h](const recorded_request& req) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (h.counter("overview", "coalesced") < clients - 1 &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
        auto r = per_user(req);
        r.delay = 200ms;
        return r;
    };
    const auto token = token_for("herd-user");

    std::vector<std::unique_ptr<test_client>> conns;
    for (std::size_t i = 0; i < clients; ++i) conns.push_back(std::make_unique<test_client>(h.port()));
    const auto request = get_request(overview, bearer(token));
    const auto start = std::chrono::steady_clock::now();
    for (auto& c : conns) c->send(request);

    std::map<std::string, int> kinds;
    std::size_t ok = 0;
    for (auto& c : conns) {
        auto res = c->read_response();
        REQUIRE(res);
        if (res->status == 200 && res->body == body_for("herd-user", overview)) ++ok;
        ++kinds[cache_status(*res)];
    }
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(h.up.requests() == 1);
    CHECK(ok == clients);
    CHECK(kinds["sidecache; fwd=miss; stored"] == 1);
    CHECK(kinds["sidecache; fwd=miss; collapsed"] == static_cast<int>(clients - 1));
    CHECK(took >= 200ms);
    CHECK(h.counter("overview", "fills") == 1);

    // And the next one is a hit.
    test_client late(h.port());
    late.send(request);
    auto res = late.read_response();
    REQUIRE(res);
    CHECK(res->header("X-Cache") == "HIT");
    CHECK(res->body == body_for("herd-user", overview));
    CHECK(h.up.requests() == 1);
}

TEST_CASE("unverifiable requests are forwarded as they are and never cached", "[integration]") {
    harness h;
    // Each upstream answer is different: a cached one would repeat.
    std::atomic<int> n{0};
    h.handler = [&n](const recorded_request& req) {
        scripted_response r;
        r.status = 401;
        r.headers = {{"Content-Type", "application/json"}, {"X-Seen-Auth", req.header("Authorization")}};
        r.body = fmt::format(R"({{"success":false,"n":{},"who":"{}"}})", ++n, user_of(req));
        return r;
    };
    const auto claims = fmt::format(R"({{"sub":"mallory","exp":{}}})", now_s() + 3600);
    const auto unsigned_token =
        auth::base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." + auth::base64url_encode(claims) + ".";
    struct variant {
        const char* name;
        std::string authorization;  // "" : no header
    };
    const auto v = GENERATE_COPY(values<variant>({
        {"forged (other secret)", "Bearer " + auth::sign_hs256(claims, "not-the-secret")},
        {"forged (claims changed)",
         [&] {
             auto t = token_for("alice");
             const auto a = t.find('.'), b = t.find('.', a + 1);
             return "Bearer " + t.substr(0, a + 1) + auth::base64url_encode(claims) + t.substr(b);
         }()},
        {"expired", "Bearer " + token_for("alice", -60)},
        {"alg none, no signature", "Bearer " + unsigned_token},
        {"alg none, signed", "Bearer " + auth::sign_hs256(R"({"alg":"none","typ":"JWT"})", claims, secret)},
        {"no sub", "Bearer " + auth::sign_hs256(fmt::format(R"({{"exp":{}}})", now_s() + 3600), secret)},
        {"not bearer", "Basic YWxpY2U6cHc="},
        {"no Authorization", ""},
    }));
    INFO(v.name);
    constexpr int requests = 6;
    test_client client(h.port());
    for (int i = 1; i <= requests; ++i) {
        const auto header =
            v.authorization.empty() ? std::string() : "Authorization: " + v.authorization + "\r\n";
        client.send(get_request(i % 2 ? overview : agents, header));
        auto res = client.read_response();
        REQUIRE(res);
        CHECK(res->status == 401);
        CHECK(res->body.find(fmt::format(R"("n":{},)", i)) != std::string::npos);
        CHECK(res->header("X-Seen-Auth") == v.authorization);
        CHECK_FALSE(test::has_header(res->headers, "X-Cache"));
    }
    CHECK(h.up.requests() == requests);
    CHECK(h.app->cache()->entries().entries() == 0);
    CHECK(h.counter("overview", "fills") == 0);
}

TEST_CASE("X-Cache MISS then HIT with Age; HEAD answers the headers without a body", "[integration]") {
    harness h;
    const auto token = token_for("alice");
    const auto want = body_for("alice", overview);
    test_client client(h.port());

    SECTION("GET then GET") {
        client.send(get_request(overview, bearer(token)));
        auto miss = client.read_response();
        REQUIRE(miss);
        CHECK(miss->status == 200);
        CHECK(miss->body == want);
        CHECK(miss->header("X-Cache") == "MISS");
        CHECK(miss->header("Content-Type") == "application/json; charset=utf-8");

        client.send(get_request(overview, bearer(token)));
        auto hit = client.read_response();
        REQUIRE(hit);
        CHECK(hit->status == 200);
        CHECK(hit->body == want);
        CHECK(hit->header("X-Cache") == "HIT");
        CHECK(hit->header("Cache-Status") == "sidecache; hit");
        REQUIRE(test::has_header(hit->headers, "Age"));
        const auto age = std::stoi(hit->header("Age"));
        CHECK(age >= 0);
        CHECK(age <= 2);
        CHECK(hit->header("Content-Length") == std::to_string(want.size()));
        CHECK(hit->keep_alive);
        CHECK(h.up.requests() == 1);
        CHECK(h.up.last().method == "GET");
        CHECK(h.up.last().target == overview);
    }
    SECTION("HEAD of a cold key, then GET, then HEAD of the cached entry, then GET on the same connection") {
        client.send(fmt::format("HEAD {} HTTP/1.1\r\nHost: x\r\n{}\r\n", overview, bearer(token)));
        auto head_miss = client.read_response(true);
        REQUIRE(head_miss);
        CHECK(head_miss->status == 200);
        CHECK(head_miss->body.empty());
        CHECK(head_miss->header("Content-Length") == std::to_string(want.size()));
        CHECK(head_miss->header("X-Cache") == "MISS");
        // The fill asked the upstream with GET: the entry holds the body.
        REQUIRE(h.up.requests() == 1);
        CHECK(h.up.last().method == "GET");

        client.send(get_request(overview, bearer(token)));
        auto get = client.read_response();
        REQUIRE(get);
        CHECK(get->header("X-Cache") == "HIT");
        CHECK(get->body == want);

        // A HEAD and a GET pipelined: no body bytes after the HEAD's head,
        // or the GET's answer would be misread.
        client.send(fmt::format("HEAD {} HTTP/1.1\r\nHost: x\r\n{}\r\n", overview, bearer(token)) +
                    get_request(overview, bearer(token)));
        auto head_hit = client.read_response(true);
        REQUIRE(head_hit);
        CHECK(head_hit->status == 200);
        CHECK(head_hit->header("X-Cache") == "HIT");
        CHECK(head_hit->header("Content-Length") == std::to_string(want.size()));
        CHECK(test::has_header(head_hit->headers, "Age"));
        auto after = client.read_response();
        REQUIRE(after);
        CHECK(after->status == 200);
        CHECK(after->body == want);
        CHECK(h.up.requests() == 1);
    }
    SECTION("Connection: close is honoured on a hit") {
        client.send(get_request(overview, bearer(token)));
        REQUIRE(client.read_response());
        client.send(get_request(overview, bearer(token) + "Connection: close\r\n"));
        auto hit = client.read_response();
        REQUIRE(hit);
        CHECK(hit->header("X-Cache") == "HIT");
        CHECK_FALSE(hit->keep_alive);
        CHECK(client.closed_by_peer());
    }
    SECTION("a hit answered while draining says Connection: close, then the connection ends") {
        client.send(get_request(overview, bearer(token)));
        REQUIRE(client.read_response());
        auto drained = std::async(std::launch::async, [&] { return h.app->drain(5s); });
        // The drain has begun once the listener refuses (each probe that
        // still connects closes at once: its session ends on the EOF).
        const auto refused_by = std::chrono::steady_clock::now() + 5s;
        for (bool refused = false; !refused && std::chrono::steady_clock::now() < refused_by;) {
            try {
                test_client probe(h.port());
            } catch (const std::exception&) {
                refused = true;
            }
        }
        // The idle keep-alive connection is in its drain grace: its request
        // is answered, from the cache, and the answer says close.
        client.send(get_request(overview, bearer(token)));
        auto hit = client.read_response();
        REQUIRE(hit);
        CHECK(hit->body == want);
        CHECK(hit->header("X-Cache") == "HIT");
        CHECK_FALSE(hit->keep_alive);
        CHECK(client.closed_by_peer());
        REQUIRE(drained.wait_for(10s) == std::future_status::ready);
        CHECK(drained.get());
    }
}

TEST_CASE("non-200 and Set-Cookie answers are not cached", "[integration]") {
    harness h;
    std::atomic<int> n{0};
    const auto token = token_for("alice");
    test_client client(h.port());

    SECTION("403") {
        h.handler = [&n](const recorded_request&) {
            scripted_response r;
            r.status = 403;
            r.headers = {{"Content-Type", "application/json"}};
            r.body = fmt::format(R"({{"success":false,"n":{}}})", ++n);
            return r;
        };
        for (int i = 1; i <= 3; ++i) {
            client.send(get_request(overview, bearer(token)));
            auto res = client.read_response();
            REQUIRE(res);
            CHECK(res->status == 403);
            CHECK(res->body == fmt::format(R"({{"success":false,"n":{}}})", i));
            CHECK(res->header("X-Cache") == "MISS");
        }
        CHECK(h.up.requests() == 3);
        CHECK(h.app->cache()->entries().entries() == 0);
    }
    SECTION("Set-Cookie") {
        h.handler = [&n](const recorded_request& req) {
            auto r = per_user(req);
            r.headers.emplace_back("Set-Cookie", fmt::format("session=s{}; HttpOnly", ++n));
            return r;
        };
        for (int i = 1; i <= 3; ++i) {
            client.send(get_request(overview, bearer(token)));
            auto res = client.read_response();
            REQUIRE(res);
            CHECK(res->status == 200);
            CHECK(res->body == body_for("alice", overview));
            CHECK(res->header("X-Cache") == "MISS");
            // The client whose request filled it gets the cookie the legacy set.
            CHECK(res->header("Set-Cookie") == fmt::format("session=s{}; HttpOnly", i));
        }
        CHECK(h.up.requests() == 3);
        CHECK(h.app->cache()->entries().entries() == 0);
    }
    SECTION("a 200 after a 403 is cached") {
        h.handler = [&n](const recorded_request& req) {
            auto r = per_user(req);
            if (++n == 1) r.status = 403;
            return r;
        };
        for (unsigned want : {403u, 200u, 200u}) {
            client.send(get_request(overview, bearer(token)));
            auto res = client.read_response();
            REQUIRE(res);
            CHECK(res->status == want);
        }
        CHECK(h.up.requests() == 2);
    }
}

TEST_CASE("only the route's named query parameters are in the key", "[integration]") {
    harness h;
    const auto token = token_for("alice");
    test_client client(h.port());
    auto get = [&](std::string_view target) {
        client.send(get_request(target, bearer(token)));
        auto res = client.read_response();
        REQUIRE(res);
        CHECK(res->status == 200);
        return *res;
    };

    // overview names none: every query is the same entry.
    auto a = get("/api/dashboard/overview?utm=1");
    auto b = get("/api/dashboard/overview?utm=2&days=7");
    CHECK(a.header("X-Cache") == "MISS");
    CHECK(b.header("X-Cache") == "HIT");
    CHECK(b.body == a.body);
    REQUIRE(h.up.requests() == 1);
    CHECK(h.up.last().target == "/api/dashboard/overview");

    // analytics names days and tz: order and other parameters do not matter.
    auto c = get("/api/dashboard/analytics?days=7&utm=x&tz=UTC");
    auto d = get("/api/dashboard/analytics?tz=UTC&ref=y&days=7");
    auto e = get("/api/dashboard/analytics?days=30&tz=UTC");
    auto f = get("/api/dashboard/analytics");
    CHECK(c.header("X-Cache") == "MISS");
    CHECK(d.header("X-Cache") == "HIT");
    CHECK(d.body == c.body);
    CHECK(e.header("X-Cache") == "MISS");
    CHECK(e.body != c.body);
    CHECK(f.header("X-Cache") == "MISS");
    CHECK(h.up.requests() == 4);
    const auto seen = h.up.received();
    CHECK(seen[1].target == "/api/dashboard/analytics?days=7&tz=UTC");
    CHECK(seen[2].target == "/api/dashboard/analytics?days=30&tz=UTC");
    CHECK(seen[3].target == "/api/dashboard/analytics");
    CHECK(get("/api/dashboard/analytics?days=30&tz=UTC").header("X-Cache") == "HIT");
    CHECK(h.up.requests() == 4);
}

TEST_CASE("the normalized query stops at the end of the view, not at the next NUL", "[unit]") {
    // The target is a view into the request buffer: " HTTP/1.1\r\n..." follows it.
    const std::string buffer = "days=30&tz=UTC HTTP/1.1\r\nAuthorization: Bearer x\r\n";
    const auto query = std::string_view(buffer).substr(0, buffer.find(' '));
    const auto normalized = cache::normalize_query(query, {"days", "tz"});
    REQUIRE(normalized);
    CHECK(*normalized == "days=30&tz=UTC");
    CHECK(cache::normalize_query(std::string_view(buffer).substr(0, 7), {"days"}) == "days=30");
}

// Issue 14: a fill's answer goes to every request coalesced onto it and into
// the cache, so the legacy must not see one client's conditional, range,
// encoding or cookie headers, and an answer shaped by them is neither stored
// nor handed on.
TEST_CASE("fills send no conditional, range, encoding or cookie header, and never keep a 304, 206 or encoded answer",
          "[integration]") {
    harness h;
    const auto token = token_for("alice");
    const std::string personal =
        "If-None-Match: \"v1\"\r\nIf-Modified-Since: Wed, 21 Oct 2015 07:28:00 GMT\r\nRange: bytes=0-9\r\n"
        "If-Range: \"v1\"\r\nAccept-Encoding: gzip, br\r\nAccept: text/html\r\nCookie: session=secret\r\n"
        "Cache-Control: no-cache\r\nX-Request-Id: req-42\r\n";
    test_client client(h.port());

    SECTION("the legacy sees the identity and tracing headers only, and the answer is shared") {
        std::mutex mutex;
        std::vector<std::string> seen;
        h.handler = [&](const recorded_request& req) {
            std::lock_guard lock(mutex);
            for (const auto& [name, value] : req.headers) seen.push_back(name);
            return per_user(req);
        };
        client.send(get_request(overview, bearer(token) + personal));
        auto miss = client.read_response();
        REQUIRE(miss);
        CHECK(miss->status == 200);
        CHECK(miss->body == body_for("alice", overview));
        CHECK(miss->header("X-Cache") == "MISS");
        {
            std::lock_guard lock(mutex);
            INFO("headers the legacy saw: " << fmt::format("{}", fmt::join(seen, ", ")));
            for (const auto& name : seen) {
                for (std::string_view banned : {"if-none-match", "if-modified-since", "range", "if-range",
                                                "accept-encoding", "accept", "cookie", "cache-control"})
                    CHECK_FALSE(boost::beast::iequals(name, banned));
            }
            CHECK(std::count_if(seen.begin(), seen.end(), [](const std::string& n) {
                      return boost::beast::iequals(n, "x-request-id");
                  }) == 1);
        }
        // Another client of the same user gets the whole answer from the cache.
        test_client other(h.port());
        other.send(get_request(overview, bearer(token)));
        auto hit = other.read_response();
        REQUIRE(hit);
        CHECK(hit->status == 200);
        CHECK(hit->body == body_for("alice", overview));
        CHECK(hit->header("X-Cache") == "HIT");
        CHECK(h.up.requests() == 1);
    }
    for (const char* shape : {"304", "206", "gzip"}) {
        DYNAMIC_SECTION("a legacy answering " << shape << " to a fill: 502, nothing stored") {
            h.handler = [shape = std::string(shape)](const recorded_request& req) {
                auto r = per_user(req);
                if (shape == "304") {
                    r.status = 304;
                    r.body.clear();
                } else if (shape == "206") {
                    r.status = 206;
                    r.headers.emplace_back("Content-Range", "bytes 0-9/100");
                    r.body = r.body.substr(0, 10);
                } else {
                    r.headers.emplace_back("Content-Encoding", "gzip");
                }
                return r;
            };
            for (int i = 1; i <= 2; ++i) {
                client.send(get_request(overview, bearer(token)));
                auto res = client.read_response();
                REQUIRE(res);
                CHECK(res->status == 502);
                CHECK(res->header("X-Cache") != "HIT");
            }
            CHECK(h.app->cache()->entries().entries() == 0);
        }
    }
}
