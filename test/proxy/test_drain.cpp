// The drain (SIGTERM) as keep-alive clients see it: a request written on a
// connection that had received neither a "Connection: close" answer nor a
// FIN is answered; idle connections close at the end of
// server.drain_idle_grace; the drain ends within drain_timeout.

#include "proxy/server.hpp"
#include "support/test_client.hpp"
#include "support/test_config.hpp"
#include "support/test_upstream.hpp"

#include <catch2/catch.hpp>
#include <fmt/core.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

using namespace sidecache;
using namespace std::chrono_literals;
using test::get_request;
using test::test_client;

namespace {

using steady = std::chrono::steady_clock;

test::scripted_response echo(const test::recorded_request& r) {
    test::scripted_response res;
    res.headers = {{"Content-Type", "text/plain"}};
    res.body = "answer for " + r.target;
    res.delay = 2ms;  // so that some requests are in flight when the drain starts
    return res;
}

// What one back-to-back client saw: answers, the requests it wrote that got
// none, and whether its last answer said "Connection: close".
struct busy_outcome {
    int answered = 0;
    int lost = 0;
    bool told_to_close = false;
    std::string failure;
};

// Sends a request as soon as the previous answer arrives, until an answer
// says "Connection: close"; the first such answer sets `closing`.
busy_outcome run_busy(std::uint16_t port, int id, std::promise<void>& closing, std::once_flag& once) {
    busy_outcome o;
    try {
        test_client c(port, 10s);
        for (int i = 0; i < 100'000; ++i) {
            const auto target = fmt::format("/busy/{}/{}", id, i);
            c.send(get_request(target));
            auto res = c.read_response();
            if (!res || res->body != "answer for " + target) {
                ++o.lost;
                o.failure = fmt::format("no answer to {}", target);
                return o;
            }
            ++o.answered;
            if (!res->keep_alive) {
                o.told_to_close = true;
                std::call_once(once, [&] { closing.set_value(); });
                return o;
            }
        }
    } catch (const std::exception& e) {
        ++o.lost;
        o.failure = e.what();
    }
    return o;
}

}  // namespace

TEST_CASE("drain: every request written before a close was seen is answered, idle connections get a grace",
          "[integration]") {
    test::test_upstream up(echo);
    auto cfg = test::test_config(up.port());
    cfg.server.drain_timeout = 10s;
    cfg.server.drain_idle_grace = 2s;
    proxy::server srv(cfg);
    srv.start();
    const auto port = srv.port();

    // Idle keep-alive clients: one request answered, then quiet; the last
    // never writes again.
    constexpr int idle_count = 4;
    std::vector<std::unique_ptr<test_client>> idle;
    for (int i = 0; i <= idle_count; ++i) {
        idle.push_back(std::make_unique<test_client>(port, 10s));
        idle.back()->send(get_request(fmt::format("/idle/{}/first", i)));
        auto res = idle.back()->read_response();
        REQUIRE(res);
        REQUIRE(res->keep_alive);
    }

    // Back-to-back clients, busy when the drain starts.
    constexpr int busy_count = 4;
    std::promise<void> closing;
    std::once_flag once;
    std::vector<std::future<busy_outcome>> busy;
    for (int b = 0; b < busy_count; ++b)
        busy.push_back(std::async(std::launch::async, [&, b] { return run_busy(port, b, closing, once); }));
    REQUIRE(up.wait_for_requests(idle_count + 1 + 50, 10s));

    const auto drain_started = steady::now();
    auto drained = std::async(std::launch::async, [&] { return srv.drain(cfg.server.drain_timeout); });

    // The drain has begun once an answer says "Connection: close": the idle
    // clients now write one request each, well within the grace.
    REQUIRE(closing.get_future().wait_for(5s) == std::future_status::ready);
    for (int i = 0; i < idle_count; ++i) {
        const auto target = fmt::format("/idle/{}/after-drain", i);
        idle[i]->send(get_request(target));
        auto res = idle[i]->read_response();
        REQUIRE(res);
        CHECK(res->body == "answer for " + target);
        CHECK_FALSE(res->keep_alive);
        CHECK(idle[i]->closed_by_peer());
    }

    for (auto& f : busy) {
        const auto o = f.get();
        INFO(o.failure);
        CHECK(o.lost == 0);
        CHECK(o.told_to_close);
        CHECK(o.answered > 0);
    }

    // The quiet one is closed at the grace's end, not before, and the drain
    // ends in time.
    CHECK(idle[idle_count]->closed_by_peer());
    const auto quiet_closed = steady::now() - drain_started;
    CHECK(quiet_closed >= 1900ms);
    REQUIRE(drained.wait_for(10s) == std::future_status::ready);
    CHECK(drained.get());
    CHECK(steady::now() - drain_started < cfg.server.drain_timeout);
}

TEST_CASE("drain: an idle connection whose client closes ends the drain at once", "[integration]") {
    test::test_upstream up(echo);
    auto cfg = test::test_config(up.port());
    cfg.server.drain_timeout = 10s;
    cfg.server.drain_idle_grace = 5s;
    proxy::server srv(cfg);
    srv.start();

    auto client = std::make_unique<test_client>(srv.port(), 10s);
    client->send(get_request("/one"));
    REQUIRE(client->read_response());

    const auto started = steady::now();
    auto drained = std::async(std::launch::async, [&] { return srv.drain(cfg.server.drain_timeout); });
    client.reset();  // the client closes its idle connection
    REQUIRE(drained.wait_for(10s) == std::future_status::ready);
    CHECK(drained.get());
    CHECK(steady::now() - started < 2s);  // not the 5 s grace
}
