// Keep-alive as a client sees it: the idle timeout (checked lazily, not
// re-armed per request) and pipelined requests answered in order.

#include "proxy/interceptor.hpp"
#include "proxy/server.hpp"
#include "support/test_client.hpp"
#include "support/started_proxy.hpp"
#include "support/test_config.hpp"
#include "support/test_upstream.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

using namespace sidecache;
using namespace std::chrono_literals;
using test::get_request;
using test::scripted_response;
using test::start_proxy;
using test::test_client;
using test::test_upstream;

namespace {

using steady = std::chrono::steady_clock;

scripted_response echo(const test::recorded_request& r) {
    scripted_response res;
    res.headers = {{"Content-Type", "text/plain"}};
    res.body = "answer for " + r.target;
    return res;
}

// Answers GET /hit/<n> with "hit <n>", from bytes that only the answer's
// storage keeps alive; declines the rest (forwarded).
class hit_interceptor final : public proxy::interceptor {
public:
    boost::asio::awaitable<std::optional<proxy::response_buffers>> handle(proxy::request_view r) override {
        if (!r.target.starts_with("/hit/")) co_return std::nullopt;
        ++answered;
        const auto body = "hit " + std::string(r.target.substr(5));
        auto bytes = std::make_shared<std::string>(
            fmt::format("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}", body.size(), body));
        proxy::response_buffers out;
        const auto split = bytes->size() - body.size();  // head and body as two buffers, like the cache
        out.buffers = {boost::asio::buffer(bytes->data(), split),
                       boost::asio::buffer(bytes->data() + split, body.size())};
        out.storage = std::move(bytes);
        co_return out;
    }
    std::atomic<int> answered{0};
};

}  // namespace

TEST_CASE("a keep-alive connection idle past server.idle_timeout is closed, a busy one is not",
          "[integration]") {
    test_upstream up(echo);
    auto srv = start_proxy(up.port(), [](conf::config& c) { c.server.idle_timeout = 300ms; });

    SECTION("idle: closed after about idle_timeout") {
        test_client client(srv->port());
        client.send(get_request("/one"));
        auto res = client.read_response();
        REQUIRE(res);
        CHECK(res->body == "answer for /one");
        const auto since = steady::now();
        CHECK(client.closed_by_peer());  // waits at most the client's 30 s receive timeout
        const auto took = steady::now() - since;
        CHECK(took >= 250ms);
        CHECK(took < 5s);
    }
    SECTION("busy for twice idle_timeout: every request answered, then closed once idle") {
        test_client client(srv->port());
        const auto start = steady::now();
        int n = 0;
        // Requests back to back for 2 x idle_timeout: the first deadline
        // passes while the connection is in use, and must not close it.
        while (steady::now() - start < 600ms) {
            client.send(get_request(fmt::format("/r{}", n)));
            auto res = client.read_response();
            REQUIRE(res);
            REQUIRE(res->body == fmt::format("answer for /r{}", n));
            ++n;
        }
        CHECK(n > 1);
        CHECK(up.accepted() == 1);
        const auto since = steady::now();
        CHECK(client.closed_by_peer());
        CHECK(steady::now() - since >= 250ms);
    }
}

TEST_CASE("pipelined requests in one write: every answer, in order, on one connection", "[integration]") {
    test_upstream up(echo);
    auto srv = start_proxy(up.port(), [](conf::config& c) { c.server.idle_timeout = 10s; });
    const int count = GENERATE(2, 16, 40);  // below, at and above server.max_pipelined (16)
    test_client client(srv->port());
    std::string burst;
    for (int i = 0; i < count; ++i) burst += get_request(fmt::format("/p{}", i));
    client.send(burst);
    for (int i = 0; i < count; ++i) {
        auto res = client.read_response();
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == fmt::format("answer for /p{}", i));
    }
    client.send(get_request("/after"));
    auto res = client.read_response();
    REQUIRE(res);
    CHECK(res->body == "answer for /after");
    CHECK(up.requests() == static_cast<std::size_t>(count) + 1);
}

TEST_CASE("pipelined hits and forwards mixed in one write: every answer, in order", "[integration]") {
    test_upstream up(echo);
    auto cfg = test::test_config(up.port());
    cfg.server.max_pipelined = GENERATE(std::size_t{1}, std::size_t{4}, std::size_t{16});
    proxy::server srv(cfg);
    auto hits = std::make_shared<hit_interceptor>();
    srv.set_interceptor(hits);
    srv.start();
    test_client client(srv.port());

    // 40 requests: every fifth forwarded, the rest answered by the interceptor.
    const auto target = [](int i) {
        return i % 5 == 2 ? fmt::format("/up/{}", i) : fmt::format("/hit/{}", i);
    };
    const auto expected = [](int i) {
        return i % 5 == 2 ? fmt::format("answer for /up/{}", i) : fmt::format("hit {}", i);
    };
    std::string burst;
    for (int i = 0; i < 40; ++i) burst += get_request(target(i));
    client.send(burst);
    for (int i = 0; i < 40; ++i) {
        auto res = client.read_response();
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == expected(i));
    }
    CHECK(hits->answered == 32);
    CHECK(up.requests() == 8);

    SECTION("a burst ending with Connection: close gets every answer, then the close") {
        client.send(get_request("/hit/a") + get_request("/hit/b") +
                    get_request("/hit/c", "Connection: close\r\n"));
        for (auto body : {"hit a", "hit b", "hit c"}) {
            auto res = client.read_response();
            REQUIRE(res);
            CHECK(res->body == body);
        }
        CHECK(client.closed_by_peer());
    }
    SECTION("a burst whose last request is incomplete: the complete ones are answered at once") {
        client.send(get_request("/hit/x") + get_request("/hit/y") + "GET /hit/z HTTP/1.1\r\nHo");
        for (auto body : {"hit x", "hit y"}) {
            auto res = client.read_response();
            REQUIRE(res);
            CHECK(res->body == body);
        }
        client.send("st: x\r\n\r\n");
        auto res = client.read_response();
        REQUIRE(res);
        CHECK(res->body == "hit z");
    }
}

// The tests' own client must not hang a run: against a server that accepts
// and never answers, a read gives up after its receive timeout.
TEST_CASE("the test client gives up after its receive timeout when nothing is answered") {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor silent(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    test_client client(silent.local_endpoint().port(), 300ms);
    auto accepted = silent.accept();  // held open, never written to
    client.send(get_request("/never"));
    const auto since = steady::now();
    CHECK_FALSE(client.read_response());
    CHECK_FALSE(client.closed_by_peer());  // still open: timed out
    const auto took = steady::now() - since;
    CHECK(took >= 600ms);
    CHECK(took < 20s);
}
