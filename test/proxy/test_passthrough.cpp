// The pass-through, seen from a client: bytes in, bytes out, status codes,
// and what the scripted upstream received.

#include "proxy/admin.hpp"
#include "proxy/interceptor.hpp"
#include "proxy/server.hpp"
#include "support/test_client.hpp"
#include "support/started_proxy.hpp"
#include "support/test_config.hpp"
#include "support/test_upstream.hpp"
#include "upstream/pool.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>
#include <fmt/core.h>

#include <future>
#include <random>

using namespace sidecache;
using namespace std::chrono_literals;
using test::get_request;
using test::scripted_response;
using test::start_proxy;
using test::test_client;
using test::test_upstream;

namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::string out(n, '\0');
    for (auto& c : out) c = static_cast<char>(gen());
    return out;
}

scripted_response ok(std::string body) {
    scripted_response r;
    r.headers = {{"Content-Type", "text/plain"}};
    r.body = std::move(body);
    return r;
}

// A port nothing listens on.
std::uint16_t closed_port() {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

}  // namespace

TEST_CASE("10 MiB upload and 10 MiB download pass through byte for byte", "[integration]") {
    const auto upload = random_bytes(10 * 1024 * 1024, 1);
    const auto download = random_bytes(10 * 1024 * 1024, 2);
    test_upstream up([&](const test::recorded_request&) { return ok(download); });
    // Bytes, not time, are under test: 10 MiB each way under a sanitizer on a
    // busy machine took longer than the tests' usual 2 s response_timeout.
    auto srv = start_proxy(up.port(), [](conf::config& c) { c.upstream.response_timeout = conf::duration{60'000}; });
    test_client client(srv->port());

    client.send(fmt::format("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", upload.size()));
    client.send(upload);
    auto res = client.read_response();
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body.size() == download.size());
    CHECK(res->body == download);
    REQUIRE(up.requests() == 1);
    CHECK(up.last().body.size() == upload.size());
    CHECK(up.last().body == upload);
    CHECK(up.last().header("Content-Length") == std::to_string(upload.size()));
}

TEST_CASE("chunked bodies pass through in both directions", "[integration]") {
    const auto body = random_bytes(300'000, 3);
    test_upstream up([&](const test::recorded_request&) {
        auto r = ok(body);
        r.chunked = true;
        r.chunk_size = 1000;
        return r;
    });
    auto srv = start_proxy(up.port());
    test_client client(srv->port());

    std::string request = "POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string sent = "hello, chunked world: " + std::string(70'000, 'z');
    for (std::size_t at = 0; at < sent.size(); at += 7000) {
        const auto piece = sent.substr(at, 7000);
        request += fmt::format("{:x}\r\n{}\r\n", piece.size(), piece);
    }
    request += "0\r\n\r\n";
    client.send(request);
    auto res = client.read_response();
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->chunked);
    CHECK(res->body == body);
    REQUIRE(up.requests() == 1);
    CHECK(up.last().chunked);
    CHECK(up.last().body == sent);
}

TEST_CASE("hop-by-hop headers are dropped both ways; X-Forwarded-For, X-Forwarded-Proto, Via added",
          "[integration]") {
    test_upstream up([](const test::recorded_request&) {
        auto r = ok("x");
        r.headers = {{"Connection", "X-Internal"}, {"X-Internal", "secret"},
                     {"Keep-Alive", "timeout=5"},  {"Proxy-Authenticate", "Basic"},
                     {"Trailer", "X-Checksum"},    {"X-Public", "yes"},
                     {"Set-Cookie", "a=b"}};
        return r;
    });
    auto srv = start_proxy(up.port());
    test_client client(srv->port());
    client.send(
        get_request("/h?q=1",
                    "Connection: keep-alive, X-Private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\n"
                    "TE: trailers\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\n"
                    "Trailer: X-Sum\r\nUpgrade: h2c\r\nX-Forwarded-For: 10.0.0.1\r\n"
                    "Via: 1.0 edge\r\nAuthorization: Bearer t\r\nX-Keep: kept\r\n"));
    auto res = client.read_response();
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->header("X-Public") == "yes");
    CHECK(res->header("Set-Cookie") == "a=b");
    for (auto name : {"X-Internal", "Keep-Alive", "Proxy-Authenticate", "Trailer"}) {
        INFO(name);
        CHECK_FALSE(test::has_header(res->headers, name));
    }
    CHECK(res->header("Connection") != "X-Internal");

    const auto req = up.last();
    CHECK(req.target == "/h?q=1");
    for (auto name : {"Connection", "X-Private", "Keep-Alive", "TE", "Proxy-Authorization",
                      "Proxy-Connection", "Trailer", "Upgrade"}) {
        INFO(name);
        CHECK_FALSE(test::has_header(req.headers, name));
    }
    CHECK(req.header("X-Keep") == "kept");
    CHECK(req.header("Authorization") == "Bearer t");
    CHECK(req.header("Host") == "sidecache.test");
    CHECK(req.header("X-Forwarded-For") == "10.0.0.1, 127.0.0.1");
    CHECK(req.header("X-Forwarded-Proto") == "http");
    CHECK(req.header("Via") == "1.0 edge, 1.1 sidecache");
}

TEST_CASE("hop-by-hop headers known by name are dropped on the common path too (Connection names no field)",
          "[integration]") {
    test_upstream up([](const test::recorded_request&) {
        auto r = ok("x");
        r.headers = {
            {"Connection", "keep-alive"}, {"Keep-Alive", "timeout=5"}, {"Proxy-Authenticate", "Basic"},
            {"Trailer", "X-Checksum"},    {"Upgrade", "h2c"},          {"X-Public", "yes"}};
        return r;
    });
    auto srv = start_proxy(up.port());
    test_client client(srv->port());
    for (int i = 0; i < 2; ++i) {  // the second on the same connections, both ways
        client.send(
            get_request("/h",
                        "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
                        "Proxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\n"
                        "Trailer: X-Sum\r\nUpgrade: h2c\r\nExpect: 100-continue\r\nX-Keep: kept\r\n"));
        auto res = client.read_response();
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == "x");
        CHECK(res->header("X-Public") == "yes");
        for (auto name : {"Connection", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Upgrade"}) {
            INFO(name);
            CHECK_FALSE(test::has_header(res->headers, name));
        }
        const auto req = up.last();
        for (auto name : {"Connection", "Keep-Alive", "TE", "Proxy-Authorization", "Proxy-Connection",
                          "Trailer", "Upgrade", "Expect"}) {
            INFO(name);
            CHECK_FALSE(test::has_header(req.headers, name));
        }
        CHECK(req.header("X-Keep") == "kept");
        CHECK(req.header("Via") == "1.1 sidecache");
    }
    CHECK(up.accepted() == 1);
}

TEST_CASE("interim 1xx answers of the upstream are skipped; the final one is relayed", "[integration]") {
    test_upstream up([](const test::recorded_request&) {
        scripted_response r;
        r.raw =
            "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: 1\r\n\r\nok";
        return r;
    });
    auto srv = start_proxy(up.port());
    test_client client(srv->port());
    for (int i = 0; i < 2; ++i) {
        client.send(get_request("/early"));
        auto res = client.read_response();
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == "ok");
        CHECK(res->header("X-Final") == "1");
        CHECK_FALSE(test::has_header(res->headers, "Link"));
    }
    CHECK(up.accepted() == 1);  // the answer was read whole: the connection was reused
}

// Found by test/fuzz/response_head.cpp: a status of "000" (any three digits
// parse) reached the client as "HTTP/1.1 0 ...", which no client parses.
TEST_CASE("an upstream status outside 100..599 is answered 502", "[integration]") {
    const std::string raw = GENERATE(std::string("HTTP/1.1 000 OK\r\nContent-Length: 2\r\n\r\nok"),
                                     std::string("HTTP/1.1 099 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                                     std::string("HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 000 Continue\r\n\r\n"));
    test_upstream up([&](const test::recorded_request&) {
        scripted_response r;
        r.raw = raw;
        return r;
    });
    auto srv = start_proxy(up.port());
    test_client client(srv->port());
    client.send(get_request("/bad-status"));
    auto res = client.read_response();
    REQUIRE(res);
    CHECK(res->status == 502);
    CHECK(res->header("Content-Type") == "application/json; charset=utf-8");
}

TEST_CASE("a response head larger than the copy buffer is relayed whole", "[integration]") {
    const std::string big(40 * 1024, 'v');  // past the 16 KiB head copy, within the 64 KiB limit
    test_upstream up([&](const test::recorded_request&) {
        auto r = ok("body");
        r.headers = {{"X-Big", big}, {"Keep-Alive", "timeout=5"}};
        return r;
    });
    auto srv = start_proxy(up.port());
    test_client client(srv->port());
    for (int i = 0; i < 2; ++i) {
        client.send(get_request("/big"));
        auto res = client.read_response();
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == "body");
        CHECK(res->header("X-Big") == big);
        CHECK_FALSE(test::has_header(res->headers, "Keep-Alive"));
    }
}

TEST_CASE("upstream connections are reused across client connections", "[integration]") {
    // Each io thread keeps its own upstream connections (as each nginx
    // worker does): sequential clients need one per thread at most.
    const unsigned threads = GENERATE(1u, 2u);
    test_upstream up([](const test::recorded_request& r) { return ok(r.target); });
    auto srv = start_proxy(up.port(), [&](conf::config& c) { c.server.threads = threads; });
    for (int i = 0; i < 6; ++i) {
        test_client client(srv->port());
        client.send(get_request(fmt::format("/r{}", i)));
        auto res = client.read_response();
        REQUIRE(res);
        CHECK(res->body == fmt::format("/r{}", i));
    }
    CHECK(up.requests() == 6);
    CHECK(up.accepted() >= 1);
    CHECK(up.accepted() <= threads);
    CHECK(srv->upstream_pool().stats().reuses == 6 - up.accepted());
}

TEST_CASE("at max_connections, an idle upstream connection of another io thread gives up its slot",
          "[integration]") {
    test_upstream up([](const test::recorded_request& r) { return ok(r.target); });
    auto srv = start_proxy(up.port(), [](conf::config& c) {
        c.server.threads = 2;
        c.upstream.max_connections = 1;
    });
    // Two clients held open at once land on the two io threads; the second
    // one's request finds the only slot idle on the other thread.
    test_client a(srv->port());
    test_client b(srv->port());
    for (int i = 0; i < 3; ++i) {
        for (auto* c : {&a, &b}) {
            c->send(get_request(fmt::format("/r{}", i)));
            auto res = c->read_response();
            REQUIRE(res);
            CHECK(res->status == 200);
            CHECK(res->body == fmt::format("/r{}", i));
        }
    }
    CHECK(up.requests() == 6);
    const auto stats = srv->upstream_pool().stats();
    CHECK(stats.open == 1);
    CHECK(stats.connects == up.accepted());
    CHECK(stats.connects >= 2);  // the slot moved between threads
}

TEST_CASE("keep-alive with pipelining: three requests in one write, three answers in order",
          "[integration]") {
    test_upstream up([](const test::recorded_request& r) {
        auto res = ok("answer for " + r.target);
        if (r.target == "/1") res.delay = 200ms;  // the first is the slowest
        return res;
    });
    auto srv = start_proxy(up.port());
    test_client client(srv->port());
    client.send(get_request("/1") + get_request("/2") + get_request("/3"));
    for (auto target : {"/1", "/2", "/3"}) {
        auto res = client.read_response();
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == std::string("answer for ") + target);
    }
    // Still open for a fourth.
    client.send(get_request("/4"));
    auto res = client.read_response();
    REQUIRE(res);
    CHECK(res->body == "answer for /4");
}

TEST_CASE("limits are answered with their status, then the connection closes", "[integration]") {
    test_upstream up([](const test::recorded_request&) { return ok("x"); });
    auto srv = start_proxy(up.port(), [](conf::config& c) {
        c.server.max_header_bytes = 4096;
        c.server.max_body_bytes = 1000;
        c.server.header_timeout = conf::duration{300};
    });
    test_client client(srv->port());
    std::string expected_code;
    unsigned expected_status = 0;

    SECTION("a header block over max_header_bytes: 431") {
        client.send(get_request("/", "X-Big: " + std::string(5000, 'a') + "\r\n"));
        expected_status = 431;
        expected_code = "HEADER_TOO_LARGE";
    }
    SECTION("a Content-Length over max_body_bytes: 413") {
        client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" + std::string(1001, 'b'));
        expected_status = 413;
        expected_code = "PAYLOAD_TOO_LARGE";
    }
    SECTION("a chunked body over max_body_bytes: 413") {
        client.send(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3e8\r\n" +
            std::string(1000, 'c') + "\r\n10\r\n" + std::string(16, 'd') + "\r\n0\r\n\r\n");
        expected_status = 413;
        expected_code = "PAYLOAD_TOO_LARGE";
    }
    SECTION("a head not complete within header_timeout: 408") {
        client.send("GET / HTTP/1.1\r\nHost: x\r\n");
        expected_status = 408;
        expected_code = "REQUEST_TIMEOUT";
    }
    SECTION("a malformed request line: 400") {
        client.send("GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n");
        expected_status = 400;
        expected_code = "BAD_REQUEST";
    }
    SECTION("HTTP/1.1 without Host: 400") {
        client.send("GET / HTTP/1.1\r\n\r\n");
        expected_status = 400;
        expected_code = "BAD_REQUEST";
    }
    auto res = client.read_response();
    REQUIRE(res);
    CHECK(res->status == expected_status);
    CHECK(res->header("Content-Type") == "application/json; charset=utf-8");
    const auto body = boost::json::parse(res->body).as_object();
    CHECK(body.at("success") == false);
    CHECK(body.at("error").at("code") == expected_code.c_str());
    CHECK(client.closed_by_peer());
    if (expected_status != 413) CHECK(up.requests() == 0);
}

TEST_CASE("ambiguous request framing is refused: 400 and close, nothing forwarded", "[integration]") {
    const std::string framing = GENERATE(
        std::string("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
        std::string("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
        std::string("Content-Length: 5\r\nContent-Length: 6\r\n"), std::string("Content-Length: 5, 6\r\n"),
        std::string("Transfer-Encoding: gzip\r\n"), std::string("Transfer-Encoding: gzip, chunked\r\n"),
        std::string("Transfer-Encoding: chunked, chunked\r\n"),
        std::string("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
        std::string("Transfer-Encoding: identity\r\nContent-Length: 5\r\n"));
    INFO(framing);
    test_upstream up([](const test::recorded_request&) { return ok("x"); });
    auto srv = start_proxy(up.port());
    test_client client(srv->port());
    client.send("POST /smuggle HTTP/1.1\r\nHost: x\r\n" + framing +
                "\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n");
    auto res = client.read_response();
    REQUIRE(res);
    CHECK(res->status == 400);
    CHECK(client.closed_by_peer());
    CHECK(up.requests() == 0);
}

TEST_CASE("HEAD, 204 and 304 answers carry no body, and the connection stays usable", "[integration]") {
    test_upstream up([](const test::recorded_request& r) {
        scripted_response res;
        if (r.target == "/no-content") {
            res.status = 204;
        } else if (r.target == "/not-modified") {
            res.status = 304;
            res.headers = {{"ETag", "\"v1\""}};
        } else {
            res.body = std::string(1234, 'h');
        }
        return res;
    });
    auto srv = start_proxy(up.port());
    test_client client(srv->port());

    client.send("HEAD /thing HTTP/1.1\r\nHost: x\r\n\r\n");
    auto head = client.read_response(true);
    REQUIRE(head);
    CHECK(head->status == 200);
    CHECK(head->header("Content-Length") == "1234");
    CHECK(head->body.empty());

    client.send(get_request("/no-content"));
    auto no_content = client.read_response();
    REQUIRE(no_content);
    CHECK(no_content->status == 204);
    CHECK(no_content->body.empty());

    client.send(get_request("/not-modified", "If-None-Match: \"v1\"\r\n"));
    auto not_modified = client.read_response();
    REQUIRE(not_modified);
    CHECK(not_modified->status == 304);
    CHECK(not_modified->header("ETag") == "\"v1\"");
    CHECK(not_modified->body.empty());

    // Had any body bytes leaked, this answer would be misread.
    client.send(get_request("/thing"));
    auto full = client.read_response();
    REQUIRE(full);
    CHECK(full->status == 200);
    CHECK(full->body == std::string(1234, 'h'));
}

TEST_CASE("a body ending at the upstream's close reaches an HTTP/1.1 client chunked", "[integration]") {
    test_upstream up([](const test::recorded_request&) {
        auto r = ok(std::string(50'000, 'e'));
        r.no_length = true;
        return r;
    });
    auto srv = start_proxy(up.port());
    test_client client(srv->port());
    client.send(get_request("/eof"));
    auto res = client.read_response();
    REQUIRE(res);
    CHECK(res->chunked);
    CHECK(res->body == std::string(50'000, 'e'));
}

TEST_CASE("upstream refused: 502 UPSTREAM_UNAVAILABLE envelope", "[integration]") {
    auto srv = start_proxy(closed_port());
    test_client client(srv->port());
    client.send(get_request("/anything"));
    auto res = client.read_response();
    REQUIRE(res);
    CHECK(res->status == 502);
    CHECK(res->header("Content-Type") == "application/json; charset=utf-8");
    const auto body = boost::json::parse(res->body).as_object();
    CHECK(body.at("success") == false);
    CHECK(body.at("error").at("code") == "UPSTREAM_UNAVAILABLE");
    CHECK_FALSE(body.at("error").at("message").as_string().empty());
    // The request was read whole: the connection goes on.
    client.send(get_request("/again"));
    auto again = client.read_response();
    REQUIRE(again);
    CHECK(again->status == 502);
}

TEST_CASE("no upstream answer within response_timeout: 504 UPSTREAM_TIMEOUT envelope", "[integration]") {
    test_upstream up([](const test::recorded_request&) {
        auto r = ok("late");
        r.delay = 1500ms;
        return r;
    });
    auto srv =
        start_proxy(up.port(), [](conf::config& c) { c.upstream.response_timeout = conf::duration{300}; });
    test_client client(srv->port());
    const auto started = std::chrono::steady_clock::now();
    client.send(get_request("/slow"));
    auto res = client.read_response();
    REQUIRE(res);
    CHECK(std::chrono::steady_clock::now() - started < 1400ms);
    CHECK(res->status == 504);
    CHECK(res->header("Content-Type") == "application/json; charset=utf-8");
    const auto body = boost::json::parse(res->body).as_object();
    CHECK(body.at("error").at("code") == "UPSTREAM_TIMEOUT");
}

TEST_CASE("a pooled connection the upstream closed is retried once on a fresh one", "[integration]") {
    // The second request on any upstream connection is dropped unanswered.
    test_upstream up([](const test::recorded_request& r) {
        scripted_response res;
        if (r.nth_on_connection == 2) {
            res.raw = "";
            res.close = true;
            return res;
        }
        return ok("fine " + r.target);
    });
    auto srv = start_proxy(up.port());
    test_client client(srv->port());

    client.send(get_request("/a"));
    auto first = client.read_response();
    REQUIRE(first);
    CHECK(first->body == "fine /a");

    SECTION("an idempotent request is retried: the client never sees the failure") {
        client.send(get_request("/b"));
        auto second = client.read_response();
        REQUIRE(second);
        CHECK(second->status == 200);
        CHECK(second->body == "fine /b");
        CHECK(up.accepted() == 2);
        CHECK(up.requests() == 3);
    }
    SECTION("a POST is not retried: 502") {
        client.send("POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        auto second = client.read_response();
        REQUIRE(second);
        CHECK(second->status == 502);
        CHECK(up.requests() == 2);
    }
}

TEST_CASE("drain lets an in-flight request finish, closes idle connections, stops accepting",
          "[integration]") {
    test_upstream up([](const test::recorded_request& r) {
        auto res = ok("finished " + r.target);
        if (r.target == "/slow") res.delay = 500ms;
        return res;
    });
    auto srv = start_proxy(up.port());
    test_client idle(srv->port());
    idle.send(get_request("/warm"));
    REQUIRE(idle.read_response());

    test_client busy(srv->port());
    busy.send(get_request("/slow"));
    REQUIRE(up.wait_for_requests(2, 5s));
    auto drained = std::async(std::launch::async, [&] { return srv->drain(5s); });

    auto res = busy.read_response();
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == "finished /slow");
    CHECK(res->header("Connection") == "close");
    CHECK(busy.closed_by_peer());
    CHECK(idle.closed_by_peer());
    REQUIRE(drained.wait_for(10s) == std::future_status::ready);
    CHECK(drained.get());
    CHECK_THROWS(test_client(srv->port()));
}

namespace {

// Answers GET /cached from bytes it holds; declines the rest.
class fixed_interceptor final : public proxy::interceptor {
public:
    boost::asio::awaitable<std::optional<proxy::response_buffers>> handle(proxy::request_view r) override {
        ++offered;
        if (r.target != "/cached") co_return std::nullopt;
        proxy::response_buffers out;
        out.buffers = {boost::asio::buffer(head_), boost::asio::buffer(body_)};
        out.storage = self_;
        co_return out;
    }
    std::atomic<int> offered{0};

private:
    std::shared_ptr<int> self_ = std::make_shared<int>(0);
    std::string head_ = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n";
    std::string body_ = "{\"hit\":true}";
};

}  // namespace

TEST_CASE("the interceptor answers what it owns; the rest is forwarded", "[integration]") {
    test_upstream up([](const test::recorded_request& r) { return ok("upstream " + r.target); });
    auto cfg = test::test_config(up.port());
    proxy::server srv(cfg);
    auto cache = std::make_shared<fixed_interceptor>();
    srv.set_interceptor(cache);
    srv.start();
    test_client client(srv.port());

    client.send(get_request("/cached") + get_request("/other") + get_request("/cached"));
    auto a = client.read_response();
    auto b = client.read_response();
    auto c = client.read_response();
    REQUIRE((a && b && c));
    CHECK(a->body == "{\"hit\":true}");
    CHECK(b->body == "upstream /other");
    CHECK(c->body == "{\"hit\":true}");
    CHECK(up.requests() == 1);

    client.send("POST /cached HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    auto d = client.read_response();
    REQUIRE(d);
    CHECK(d->body == "upstream /cached");  // POST is never offered
    CHECK(cache->offered == 3);
}

TEST_CASE("admin: /live, /ready with registered checks, /stats with registered sections", "[integration]") {
    test_upstream up([](const test::recorded_request&) { return ok("x"); });
    auto cfg = test::test_config(up.port());
    proxy::server srv(cfg);
    std::atomic<bool> db_ok{true};
    srv.admin().add_readiness("database", [&] { return db_ok ? std::string() : std::string("unreachable"); });
    srv.admin().add_stats("cache", [] { return boost::json::object{{"hits", 42}}; });
    srv.start();
    REQUIRE(srv.admin_port() != 0);

    test_client proxied(srv.port());
    proxied.send(get_request("/counted"));
    REQUIRE(proxied.read_response());

    test_client admin(srv.admin_port());
    admin.send(get_request("/live"));
    auto live = admin.read_response();
    REQUIRE(live);
    CHECK(live->status == 200);

    admin.send(get_request("/ready"));
    auto ready = admin.read_response();
    REQUIRE(ready);
    CHECK(ready->status == 200);

    db_ok = false;
    admin.send(get_request("/ready"));
    auto not_ready = admin.read_response();
    REQUIRE(not_ready);
    CHECK(not_ready->status == 503);
    CHECK(not_ready->body == "database: unreachable\n");

    admin.send(get_request("/stats"));
    auto stats = admin.read_response();
    REQUIRE(stats);
    CHECK(stats->status == 200);
    const auto json = boost::json::parse(stats->body).as_object();
    CHECK(json.at("cache").at("hits") == 42);
    CHECK(json.at("proxy").at("forwarded") == 1);
    CHECK(json.at("upstream").at("connects") == 1);
}
