// The cache service driven on an io_context and a manual clock: hits,
// coalescing, waiter timeouts and caps, stale-while-revalidate,
// stale-if-error, versions, invalidation, and threads.
#include "cache/service.hpp"
#include "support/answer_bytes.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <stdexcept>
#include <thread>

using namespace sidecache;
using test::body_of;
using test::bytes_of;
using namespace std::chrono_literals;
namespace net = boost::asio;
using cache::answer_kind;

namespace {

conf::cache_config make_config() {
    conf::cache_config c;
    c.shards = 4;
    for (const char* name : {"overview", "agents"}) {
        conf::route_config r;
        r.name = name;
        r.path = std::string("/api/") + name;
        r.query_params = {"range"};
        r.ttl = 30s;
        r.stale_while_revalidate = 10s;
        r.stale_if_error = 60s;
        r.utc_day_bound = false;
        r.max_waiters = 100;
        r.wait_timeout = 5s;
        c.routes.push_back(r);
    }
    return c;
}

// A filler whose fills wait, if gated, until the test releases them.
struct scripted_filler final : cache::filler {
    net::io_context& ioc;
    bool gated = false;
    std::vector<cache::fill_request> requests;
    std::deque<cache::fill_result> scripted;  // used first; then a 200 "fill N"
    std::vector<std::shared_ptr<net::steady_timer>> gates;
    std::function<void()> on_fill;  // runs when a fill starts (before the gate)

    explicit scripted_filler(net::io_context& io) : ioc(io) {}

    net::awaitable<cache::fill_result> fill(cache::fill_request request) override {
        requests.push_back(request);
        auto n = requests.size();
        if (on_fill) on_fill();
        if (gated) {
            auto gate = std::make_shared<net::steady_timer>(ioc, net::steady_timer::time_point::max());
            gates.push_back(gate);
            co_await gate->async_wait(net::as_tuple(net::use_awaitable));
        }
        if (!scripted.empty()) {
            auto r = scripted.front();
            scripted.pop_front();
            co_return r;
        }
        cache::fill_result r;
        r.status = 200;
        r.headers = {{"Content-Type", "application/json; charset=utf-8"}};
        r.body = "fill " + std::to_string(n);
        co_return r;
    }

    void release() {
        for (auto& g : gates) g->cancel();
        gates.clear();
    }
};

struct fixture {
    conf::cache_config config = make_config();
    sync::manual_time_source clock;
    cache::service svc{config, clock};
    net::io_context ioc;
    scripted_filler filler{ioc};
    std::vector<cache::cache_answer> answers;

    net::awaitable<void> ask(std::string user, std::string query) {
        cache::cache_request r{0, user, query, true};
        // (a braced list inside co_await trips GCC 12: build it first)
        cache::header_list headers{{"Authorization", "Bearer t"}};
        answers.push_back(co_await svc.serve(r, std::move(headers), filler));
    }

    void spawn(std::string user = "u1", std::string query = "") {
        net::co_spawn(ioc, ask(std::move(user), std::move(query)), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    }

    // Runs handlers until `n` answers arrived, with a deadline.
    void wait_answers(std::size_t n, std::chrono::seconds limit = 10s) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (answers.size() < n && std::chrono::steady_clock::now() < deadline) {
            ioc.restart();
            ioc.run_one_for(50ms);
        }
        REQUIRE(answers.size() >= n);
    }

    // Runs what is ready now.
    void settle() {
        ioc.restart();
        ioc.poll();
    }

    cache::cache_answer serve_one(std::string user = "u1", std::string query = "") {
        auto before = answers.size();
        spawn(user, query);
        wait_answers(before + 1);
        settle();
        return answers.back();
    }
};

}  // namespace

TEST_CASE("service: a miss is filled and stored, then hits answer the same bytes", "[unit]") {
    fixture f;
    auto miss = f.serve_one();
    CHECK(miss.kind == answer_kind::miss_stored);
    CHECK(bytes_of(miss) ==
          "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
          "Content-Length: 6\r\nAge: 0\r\nCache-Status: sidecache; fwd=miss; stored\r\n"
          "X-Cache: MISS\r\nConnection: keep-alive\r\n\r\nfill 1");
    REQUIRE(f.filler.requests.size() == 1);
    CHECK(f.filler.requests[0].user_id == "u1");
    CHECK(f.filler.requests[0].route == "overview");
    CHECK_FALSE(f.filler.requests[0].background);

    f.clock.advance(7s);
    auto hit = f.serve_one();
    CHECK(hit.kind == answer_kind::hit);
    CHECK(bytes_of(hit) ==
          "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
          "Content-Length: 6\r\nAge: 7\r\nCache-Status: sidecache; hit\r\n"
          "X-Cache: HIT\r\nConnection: keep-alive\r\n\r\nfill 1");
    auto fast = f.svc.try_hit({0, "u1", "", false});
    REQUIRE(fast);
    CHECK(bytes_of(*fast).find("Connection: close\r\n\r\nfill 1") != std::string::npos);
    CHECK(f.filler.requests.size() == 1);

    // Another user, another query value: other keys, other fills.
    CHECK(body_of(f.serve_one("u2")) == "fill 2");
    CHECK(body_of(f.serve_one("u1", "range=7d")) == "fill 3");
    CHECK(f.filler.requests.back().query == "range=7d");
    // Parameters not in the key are dropped; order does not matter.
    CHECK(body_of(f.serve_one("u1", "x=1&range=7d")) == "fill 3");
    CHECK(f.filler.requests.size() == 3);

    auto stats = f.svc.stats();
    auto& o = stats["routes"].as_object()["overview"].as_object();
    CHECK(o["hits"].as_uint64() == 3);  // try_hit counts too
    CHECK(o["misses"].as_uint64() == 3);
    CHECK(o["fills"].as_uint64() == 3);
    CHECK(o["entries"].as_int64() == 3);
}

TEST_CASE("service: concurrent misses of one key cause exactly one fill", "[unit]") {
    fixture f;
    f.filler.gated = true;
    for (int i = 0; i < 50; ++i) f.spawn();
    f.spawn("u2");  // not coalesced across users
    f.settle();
    CHECK(f.filler.requests.size() == 2);
    CHECK(f.answers.empty());
    f.filler.release();
    f.wait_answers(51);
    int leaders = 0, collapsed = 0;
    for (auto& a : f.answers) {
        CHECK(a.status == 200);
        if (a.kind == answer_kind::miss_stored) ++leaders;
        if (a.kind == answer_kind::collapsed) {
            ++collapsed;
            CHECK(body_of(a) == "fill 1");
        }
    }
    CHECK(leaders == 2);
    CHECK(collapsed == 49);
    auto stats = f.svc.stats();
    CHECK(stats["routes"].as_object()["overview"].as_object()["coalesced"].as_uint64() == 49);
    CHECK(f.filler.requests.size() == 2);
}

TEST_CASE("service: a waiter gives up after wait_timeout: 503 envelope, or stale", "[unit]") {
    fixture f;
    f.config.routes[0].wait_timeout = 30ms;
    f.filler.gated = true;
    SECTION("nothing stale: 503") {
        f.spawn();
        f.settle();
        f.clock.advance(29ms);
        f.settle();
        CHECK(f.answers.empty());
        f.clock.advance(1ms);  // the wait is timed by the service's clock
        f.wait_answers(1);
        auto& a = f.answers[0];
        CHECK(a.status == 503);
        CHECK(a.kind == answer_kind::timeout);
        CHECK(
            body_of(a) ==
            R"({"success":false,"error":{"code":"PERFORMANCE_TIMEOUT","message":"The request could not be answered in time; try again shortly."}})");
        CHECK(bytes_of(a).starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        // The fill was not abandoned: it completes and is stored.
        f.filler.release();
        f.settle();
        auto hit = f.serve_one();
        CHECK(hit.kind == answer_kind::hit);
        CHECK(body_of(hit) == "fill 1");
        CHECK(f.filler.requests.size() == 1);
    }
    SECTION("an entry past stale_while_revalidate but within stale_if_error is served") {
        f.filler.gated = false;
        f.serve_one();
        f.clock.advance(45s);  // ttl 30 + swr 10 < 45 < 30 + 60
        f.filler.gated = true;
        f.spawn();
        f.settle();
        f.clock.advance(30ms);
        f.wait_answers(2);
        CHECK(f.answers[1].kind == answer_kind::stale_timeout);
        CHECK(body_of(f.answers[1]) == "fill 1");
        CHECK(bytes_of(f.answers[1]).find("Age: 45\r\n") != std::string::npos);
        f.filler.release();
        f.settle();
    }
}

namespace {

// The fixture's manual clock, made to throw from steady_now() once armed:
// after the filler returned, the fill reads it outside any try.
struct throwing_clock final : sync::time_source {
    sync::manual_time_source inner;
    mutable std::atomic<bool> armed{false};

    std::chrono::steady_clock::time_point steady_now() const override {
        if (armed.exchange(false)) throw std::runtime_error("the clock broke");
        return inner.steady_now();
    }
    std::chrono::system_clock::time_point system_now() const override { return inner.system_now(); }
    bool call_at(std::chrono::steady_clock::time_point deadline, std::function<void()> due) const override {
        return inner.call_at(deadline, std::move(due));
    }
};

}  // namespace

TEST_CASE(
    "service: a fill that throws after its filler returned still ends; the next request "
    "fills anew",
    "[unit]") {
    auto config = make_config();
    // Real time only matters to a build where waits are real timers: there
    // a stuck flight makes both requests wait 200 ms and get 503.
    config.routes[0].wait_timeout = 200ms;
    throwing_clock clock;
    cache::service svc{config, clock};
    net::io_context ioc;
    scripted_filler filler{ioc};
    filler.on_fill = [&] {
        if (filler.requests.size() == 1)
            clock.armed = true;  // the first fill throws once its filler answered
    };
    std::vector<cache::cache_answer> answers;
    auto ask = [&]() -> net::awaitable<void> {
        cache::cache_request r{0, "u1", "", true};
        answers.push_back(co_await svc.serve(r, cache::header_list{}, filler));
    };
    auto serve_one = [&] {
        auto before = answers.size();
        net::co_spawn(ioc, ask(), net::detached);
        auto limit = std::chrono::steady_clock::now() + 10s;
        while (answers.size() == before && std::chrono::steady_clock::now() < limit) {
            ioc.restart();
            ioc.run_one_for(50ms);
        }
        REQUIRE(answers.size() == before + 1);
        return answers.back();
    };

    auto first = serve_one();
    CHECK(first.status == 502);  // what a failed fill without a stale entry gives
    CHECK(first.kind == answer_kind::fill_error);
    CHECK(svc.fills_in_flight() == 0);

    auto second = serve_one();
    CHECK(filler.requests.size() == 2);  // a fresh fill, not a join of the dead one
    CHECK(second.status == 200);
    CHECK(body_of(second) == "fill 2");
    CHECK(svc.fills_in_flight() == 0);
}

TEST_CASE("service: waiters beyond max_waiters are refused at once", "[unit]") {
    fixture f;
    f.config.routes[0].max_waiters = 3;
    f.filler.gated = true;
    for (int i = 0; i < 5; ++i) f.spawn();
    f.wait_answers(2);
    CHECK(f.answers[0].kind == answer_kind::overloaded);
    CHECK(f.answers[0].status == 503);
    CHECK(f.answers[1].kind == answer_kind::overloaded);
    f.filler.release();
    f.wait_answers(5);
    CHECK(f.filler.requests.size() == 1);
    CHECK(body_of(f.answers[4]) == "fill 1");
}

TEST_CASE("service: stale-while-revalidate serves stale and refreshes once", "[unit]") {
    fixture f;
    f.serve_one();
    f.clock.advance(35s);  // past ttl, within swr
    f.filler.gated = true;
    for (int i = 0; i < 5; ++i) {
        auto a = f.serve_one();
        CHECK(a.kind == answer_kind::stale);
        CHECK(body_of(a) == "fill 1");
        CHECK(bytes_of(a).find("Cache-Status: sidecache; hit; fwd=stale\r\nX-Cache: STALE\r\n") !=
              std::string::npos);
    }
    REQUIRE(f.filler.requests.size() == 2);  // one refresh for five stale answers
    CHECK(f.filler.requests[1].background);
    f.filler.release();
    f.settle();
    auto a = f.serve_one();
    CHECK(a.kind == answer_kind::hit);
    CHECK(body_of(a) == "fill 2");
    CHECK(f.svc.stats()["routes"].as_object()["overview"].as_object()["stale"].as_uint64() == 5);
}

TEST_CASE("service: a failed fill serves the stale entry, else the failure", "[unit]") {
    fixture f;
    cache::fill_result bad;
    bad.status = 502;
    bad.failed = true;
    bad.body = "upstream down";
    SECTION("stale within stale_if_error") {
        f.serve_one();
        f.clock.advance(50s);
        f.filler.scripted.push_back(bad);
        auto a = f.serve_one();
        CHECK(a.kind == answer_kind::stale_if_error);
        CHECK(a.status == 200);
        CHECK(body_of(a) == "fill 1");
    }
    SECTION("nothing stale: the failure itself, not stored") {
        f.filler.scripted.push_back(bad);
        auto a = f.serve_one();
        CHECK(a.status == 502);
        CHECK(body_of(a) == "upstream down");
        f.clock.advance(1s);  // the key's failure_backoff
        CHECK(body_of(f.serve_one()) == "fill 2");
    }
    SECTION("a fill that throws: 502 envelope") {
        struct throwing final : cache::filler {
            net::awaitable<cache::fill_result> fill(cache::fill_request) override {
                throw std::runtime_error("boom");
                co_return cache::fill_result{};
            }
        } thrower;
        net::co_spawn(
            f.ioc,
            [&]() -> net::awaitable<void> {
                cache::cache_request r{0, "u1", "", true};
                f.answers.push_back(co_await f.svc.serve(r, cache::header_list{}, thrower));
            },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        f.wait_answers(1);
        CHECK(f.answers[0].status == 502);
        CHECK(body_of(f.answers[0]).find("UPSTREAM_ERROR") != std::string::npos);
    }
}

TEST_CASE("service: a fill slower than wait_timeout runs to fill_timeout and is stored", "[unit]") {
    fixture f;
    f.config.routes[0].wait_timeout = 5s;
    f.config.routes[0].fill_timeout = 30s;
    f.filler.gated = true;
    f.spawn();
    f.settle();
    REQUIRE(f.filler.requests.size() == 1);
    // The fill is given its own deadline, not its waiter's.
    CHECK(f.filler.requests[0].deadline == f.clock.steady_now() + 30s);
    f.clock.advance(5s);
    f.wait_answers(1);
    CHECK(f.answers[0].kind == answer_kind::timeout);  // the waiter gave up
    f.clock.advance(10s);
    f.filler.release();  // the fill ends after 15 s
    f.settle();
    auto next = f.serve_one();
    CHECK(next.kind == answer_kind::hit);
    CHECK(body_of(next) == "fill 1");
    CHECK(f.filler.requests.size() == 1);
}

TEST_CASE("service: a failing key is filled at most once per backoff, doubling up to its maximum",
          "[unit]") {
    fixture f;
    f.config.routes[0].failure_backoff = 1s;
    f.config.routes[0].failure_backoff_max = 4s;
    cache::fill_result bad;
    bad.status = 503;
    bad.body = "legacy down";
    for (int i = 0; i < 5; ++i) f.filler.scripted.push_back(bad);

    // Requests every 100 ms for 12 s: fills at 0, 1, 3, 7 and 11 s
    // (waits of 1, 2, 4, 4 s), the rest answered at once with the failure.
    std::vector<double> fill_times;
    int backed_off = 0;
    for (int tick = 0; tick <= 120; ++tick) {
        auto fills = f.filler.requests.size();
        auto a = f.serve_one();
        CHECK(a.status == 503);
        CHECK(body_of(a) == "legacy down");
        if (f.filler.requests.size() > fills)
            fill_times.push_back(tick / 10.0);
        else if (a.kind == answer_kind::backed_off)
            ++backed_off;
        f.clock.advance(100ms);
    }
    CHECK(fill_times == std::vector<double>{0, 1, 3, 7, 11});
    CHECK(backed_off == 121 - 5);
    CHECK(bytes_of(f.serve_one()).find("Cache-Status: sidecache; detail=fill-backoff\r\n") != std::string::npos);

    // It recovers: the next fill after the backoff succeeds, is stored, and
    // the doubling starts over.
    f.clock.advance(4s);
    auto ok = f.serve_one();
    CHECK(ok.kind == answer_kind::miss_stored);
    CHECK(f.serve_one().kind == answer_kind::hit);
    auto stats = f.svc.stats();
    CHECK(stats["routes"].as_object()["overview"].as_object()["backed_off"].as_uint64() == 117);
}

TEST_CASE("service: during a key's backoff, its entry is served if it can be, and no refill runs", "[unit]") {
    fixture f;
    f.serve_one();  // "fill 1", fresh for 30 s, then stale 10 s, then stale-if-error
    cache::fill_result bad;
    bad.status = 503;
    bad.body = "legacy down";
    f.filler.scripted.push_back(bad);
    f.clock.advance(45s);
    CHECK(f.serve_one().kind == answer_kind::stale_if_error);  // fill 2 failed
    CHECK(f.filler.requests.size() == 2);
    auto held = f.serve_one();  // in its backoff: the entry, no fill
    CHECK(held.kind == answer_kind::stale_if_error);
    CHECK(body_of(held) == "fill 1");
    CHECK(f.filler.requests.size() == 2);
}

TEST_CASE("service: an invalidation ends a key's backoff: the next request fills", "[unit]") {
    fixture f;
    cache::fill_result bad;
    bad.status = 503;
    f.filler.scripted.push_back(bad);
    CHECK(f.serve_one().status == 503);
    CHECK(f.serve_one().kind == answer_kind::backed_off);
    f.svc.invalidate("user:u2", cache::invalidation::hard);  // someone else's: no change
    CHECK(f.serve_one().kind == answer_kind::backed_off);
    f.svc.invalidate("user:u1", cache::invalidation::hard);
    CHECK(f.serve_one().kind == answer_kind::miss_stored);
    CHECK(f.filler.requests.size() == 2);
}

TEST_CASE("service: non-2xx, Set-Cookie and no-store answers are passed on, never stored", "[unit]") {
    fixture f;
    cache::fill_result r;
    r.status = GENERATE(404u, 403u, 200u);
    r.body = "x";
    if (r.status == 200)
        r.headers = {GENERATE(std::pair<std::string, std::string>{"Set-Cookie", "a=b"},
                              std::pair<std::string, std::string>{"Cache-Control", "private, no-store"})};
    f.filler.scripted.push_back(r);
    auto a = f.serve_one();
    CHECK(a.status == r.status);
    CHECK(a.kind == answer_kind::miss);
    CHECK(body_of(f.serve_one()) == "fill 2");  // asked again
}

TEST_CASE("service: a fill that began before an invalidation is handed to its waiters, not stored",
          "[unit]") {
    fixture f;
    f.filler.gated = true;
    auto tag = GENERATE(std::string("user:u1"), std::string("agent:a7"), std::string("route:overview"));
    cache::fill_result r;
    r.status = 200;
    r.body = "computed before the write";
    r.tags = {"agent:a7"};
    f.filler.scripted.push_back(r);
    f.spawn();
    f.spawn();
    f.settle();
    REQUIRE(f.filler.requests.size() == 1);  // the fill has begun and waits at its gate
    f.svc.invalidate(tag);                   // a write lands meanwhile
    f.filler.release();
    f.wait_answers(2);
    CHECK(body_of(f.answers[0]) == "computed before the write");
    CHECK(body_of(f.answers[1]) == "computed before the write");
    CHECK(f.answers[0].kind == answer_kind::miss);  // not "stored"
    f.filler.gated = false;
    CHECK(body_of(f.serve_one()) == "fill 2");  // recomputed
    CHECK(f.serve_one().kind == answer_kind::hit);
}

TEST_CASE("service: a request after an invalidation never gets the answer of a fill that began before it",
          "[unit]") {
    fixture f;
    f.filler.gated = true;
    auto tag = GENERATE(std::string("user:u1"), std::string("agent:a7"), std::string("route:overview"));
    auto mode = GENERATE(cache::invalidation::hard, cache::invalidation::soft);
    f.spawn();  // joins before the write: may get either answer
    f.settle();
    REQUIRE(f.filler.requests.size() == 1);  // its fill began and waits at its gate
    f.svc.invalidate(tag, mode);             // a write lands meanwhile
    f.spawn();                               // arrives after the write
    f.settle();
    CHECK(f.filler.requests.size() == 2);  // a new fill, not the old one joined
    f.filler.release();
    f.wait_answers(2);
    CHECK(body_of(f.answers[0]) == "fill 1");
    CHECK(body_of(f.answers[1]) == "fill 2");
    CHECK(f.answers[1].kind == answer_kind::miss_stored);
    auto hit = f.serve_one();
    CHECK(hit.kind == answer_kind::hit);
    CHECK(body_of(hit) == "fill 2");  // the older fill was not stored over it
}

TEST_CASE("service: an invalidation of another user or route leaves a fill in flight joinable", "[unit]") {
    fixture f;
    f.filler.gated = true;
    auto tag = GENERATE(std::string("user:u2"), std::string("route:agents"));
    f.spawn();
    f.settle();
    f.svc.invalidate(tag, cache::invalidation::hard);
    f.spawn();
    f.settle();
    CHECK(f.filler.requests.size() == 1);
    f.filler.release();
    f.wait_answers(2);
    CHECK(body_of(f.answers[1]) == "fill 1");
    CHECK(f.answers[1].kind == answer_kind::collapsed);
}

TEST_CASE(
    "service: invalidate_entries leaves fills in flight joinable; stores them unless they carry the tag",
    "[unit]") {
    fixture f;
    f.filler.gated = true;
    auto carried = GENERATE(false, true);
    cache::fill_result r;
    r.status = 200;
    r.body = "computed while an agent changed";
    r.tags = {carried ? "agent:a7" : "agent:a9"};
    f.filler.scripted.push_back(r);
    f.spawn();
    f.settle();
    REQUIRE(f.filler.requests.size() == 1);
    f.svc.invalidate_entries("agent:a7", cache::invalidation::hard);
    f.spawn();  // joins: the tag names no key
    f.settle();
    CHECK(f.filler.requests.size() == 1);
    f.filler.release();
    f.wait_answers(2);
    CHECK(body_of(f.answers[1]) == "computed while an agent changed");
    CHECK(f.answers[1].kind == answer_kind::collapsed);
    CHECK(f.answers[0].kind == (carried ? answer_kind::miss : answer_kind::miss_stored));
    f.filler.gated = false;
    auto next = f.serve_one();
    CHECK(next.kind == (carried ? answer_kind::miss_stored : answer_kind::hit));
}

TEST_CASE("service: a stale entry captured before a wait is not served once invalidated", "[unit]") {
    fixture f;
    f.config.routes[0].wait_timeout = 30ms;
    f.serve_one();         // "fill 1" stored
    f.clock.advance(45s);  // past stale_while_revalidate, within stale_if_error: the request waits
    f.filler.gated = true;
    SECTION("the waiter times out") {
        f.spawn();
        f.settle();
        REQUIRE(f.filler.requests.size() == 2);
        f.svc.invalidate("user:u1", cache::invalidation::hard);
        f.clock.advance(30ms);
        f.wait_answers(2);
        CHECK(f.answers[1].status == 503);
        CHECK(f.answers[1].kind == answer_kind::timeout);
        f.filler.release();
        f.settle();
    }
    SECTION("the fill fails") {
        cache::fill_result failed;
        failed.failed = true;
        f.filler.scripted.push_back(failed);
        f.spawn();
        f.settle();
        REQUIRE(f.filler.requests.size() == 2);
        f.svc.invalidate("user:u1", cache::invalidation::hard);
        f.filler.release();
        f.wait_answers(2);
        CHECK(f.answers[1].status == 502);
        CHECK(f.answers[1].kind == answer_kind::fill_error);
    }
}

TEST_CASE("service: soft invalidation serves stale once while refreshing; hard forces a miss", "[unit]") {
    fixture f;
    f.serve_one();
    SECTION("soft") {
        CHECK(f.svc.invalidate("user:u1") == 1);
        auto a = f.serve_one();
        CHECK(a.kind == answer_kind::stale);
        CHECK(body_of(a) == "fill 1");
        f.settle();
        CHECK(f.filler.requests.size() == 2);
        auto b = f.serve_one();
        CHECK(b.kind == answer_kind::hit);
        CHECK(body_of(b) == "fill 2");
    }
    SECTION("hard") {
        CHECK(f.svc.invalidate("user:u1", cache::invalidation::hard) == 1);
        auto a = f.serve_one();
        CHECK(a.kind == answer_kind::miss_stored);
        CHECK(body_of(a) == "fill 2");
    }
}

TEST_CASE("service: an answer computed before UTC midnight is not served after it, but if its refill fails",
          "[unit]") {
    fixture f;
    f.config.routes[0].utc_day_bound = true;
    f.clock.set_system(std::chrono::sys_days{std::chrono::year{2026} / 11 / 28} + 23h + 59min + 50s);
    f.serve_one();
    f.clock.advance(9s);
    CHECK(f.serve_one().kind == answer_kind::hit);
    f.clock.advance(2s);  // 00:00:01: ttl (30 s) and stale_while_revalidate (10 s) not over
    auto after = f.serve_one();
    CHECK(after.kind == answer_kind::miss_stored);  // waited for the refill, not yesterday's answer
    CHECK(body_of(after) == "fill 2");

    // Yesterday's answer is still the one to serve if the refill fails.
    f.clock.set_system(std::chrono::sys_days{std::chrono::year{2026} / 11 / 29} + 23h + 59min + 55s);
    CHECK(body_of(f.serve_one("u2")) == "fill 3");
    f.clock.advance(10s);  // 00:00:05
    cache::fill_result failed;
    failed.status = 503;
    f.filler.scripted.push_back(failed);
    auto fallback = f.serve_one("u2");
    CHECK(fallback.kind == answer_kind::stale_if_error);
    CHECK(body_of(fallback) == "fill 3");
}

TEST_CASE("service: a fill outlives the client that caused it", "[unit]") {
    fixture f;
    f.filler.gated = true;
    net::cancellation_signal cancel;
    bool finished = false;
    net::co_spawn(
        f.ioc,
        [&]() -> net::awaitable<void> {
            cache::cache_request r{0, "u1", "", true};
            co_await f.svc.serve(r, cache::header_list{}, f.filler);
            finished = true;
        },
        net::bind_cancellation_slot(cancel.slot(), [](std::exception_ptr) {}));
    f.settle();
    REQUIRE(f.filler.requests.size() == 1);
    cancel.emit(net::cancellation_type::terminal);  // the client went away
    f.settle();
    CHECK(finished);
    f.filler.release();
    f.settle();
    auto a = f.serve_one();
    CHECK(a.kind == answer_kind::hit);
    CHECK(body_of(a) == "fill 1");
    CHECK(f.filler.requests.size() == 1);
    CHECK(f.svc.fills_in_flight() == 0);
}

TEST_CASE("service: threads serving, filling and invalidating at once", "[unit]") {
    // Run under -DSIDECACHE_SANITIZE=thread to check for races.
    conf::cache_config config = make_config();
    config.max_bytes = 64 * 1024;  // small: evictions happen too
    cache::service svc(config, sync::real_time());

    struct instant final : cache::filler {
        std::atomic<int> calls{0};
        net::awaitable<cache::fill_result> fill(cache::fill_request req) override {
            ++calls;
            cache::fill_result r;
            r.status = 200;
            r.body = "for " + req.user_id + std::string(200, '.');
            r.tags = {"agent:" + std::to_string(calls % 3)};
            co_return r;
        }
    } filler;

    net::thread_pool pool(4);
    const int per_thread = 2000;
    std::atomic<int> answered{0}, wrong{0};
    for (int t = 0; t < 4; ++t) {
        net::co_spawn(
            net::make_strand(pool),
            [&, t]() -> net::awaitable<void> {
                for (int i = 0; i < per_thread; ++i) {
                    auto user = "u" + std::to_string((i * 7 + t) % 40);
                    if (i % 97 == 0)
                        svc.invalidate("user:" + user,
                                       i % 2 ? cache::invalidation::hard : cache::invalidation::soft);
                    cache::cache_request r{std::size_t(i % 2), user, "", true};
                    auto a = co_await svc.serve(r, cache::header_list{}, filler);
                    if (a.status != 200 || body_of(a).rfind("for " + user + ".", 0) != 0) ++wrong;
                    ++answered;
                }
            },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
    }
    pool.join();
    CHECK(answered == 4 * per_thread);
    CHECK(wrong == 0);
    CHECK(svc.entries().bytes() <= config.max_bytes);
    CHECK(filler.calls < 4 * per_thread);  // hits happened
    CHECK(svc.fills_in_flight() == 0);
}

TEST_CASE("service: waiters on many strands of a thread pool share one fill", "[unit]") {
    conf::cache_config config = make_config();
    cache::service svc(config, sync::real_time());
    net::thread_pool pool(2);

    // A fill that takes 50 ms of timer time, so that every request arrives
    // while it runs.
    struct slow final : cache::filler {
        std::atomic<int> calls{0};
        net::awaitable<cache::fill_result> fill(cache::fill_request) override {
            ++calls;
            net::steady_timer t(co_await net::this_coro::executor, 50ms);
            co_await t.async_wait(net::use_awaitable);
            cache::fill_result r;
            r.status = 200;
            r.body = "shared";
            co_return r;
        }
    } filler;

    std::atomic<int> shared{0}, answered{0};
    for (int i = 0; i < 20; ++i)
        net::co_spawn(
            net::make_strand(pool),
            [&]() -> net::awaitable<void> {
                cache::cache_request r{0, "u1", "", true};
                auto a = co_await svc.serve(r, cache::header_list{}, filler);
                if (body_of(a) == "shared") ++shared;
                ++answered;
            },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
    pool.join();
    CHECK(answered == 20);
    CHECK(shared == 20);
    CHECK(filler.calls == 1);
}
