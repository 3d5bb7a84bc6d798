// The refill ahead of the readers at UTC midnight (cache/midnight_refill.hpp),
// driven on an io_context and a manual clock: which entries are refilled,
// how many at once, and what a request that comes before its entry's
// refill gets (never yesterday's answer).
#include "cache/midnight_refill.hpp"
#include "cache/service.hpp"
#include "support/answer_bytes.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <deque>
#include <memory>
#include <set>
#include <string>

using namespace sidecache;
using test::body_of;
using namespace std::chrono_literals;
namespace net = boost::asio;
using cache::answer_kind;

namespace {

const auto day_before = std::chrono::sys_days{std::chrono::year{2026} / 11 / 28};

conf::cache_config make_config() {
    conf::cache_config c;
    c.shards = 4;
    for (const char* name : {"overview", "plain"}) {
        conf::route_config r;
        r.name = name;
        r.path = std::string("/api/") + name;
        r.ttl = 10min;
        r.stale_while_revalidate = 10min;  // would serve yesterday's answer but for past_day_end
        r.stale_if_error = 1h;
        r.utc_day_bound = r.name == "overview";
        r.fill = conf::fill_kind::postgres;
        r.max_waiters = 100;
        r.wait_timeout = 5s;
        c.routes.push_back(r);
    }
    c.midnight_refill.recent = 5min;
    c.midnight_refill.max_entries = 100;
    c.midnight_refill.concurrency = 3;
    c.midnight_refill.spread = 0s;
    return c;
}

// Answers "<user> day <N>" (N: the manual clock's day of the month when the
// fill began), held at a gate while `gated`; counts the fills at once.
struct day_filler final : cache::filler {
    net::io_context& ioc;
    const sync::time_source& clock;
    bool gated = false;
    std::vector<cache::fill_request> requests;
    std::deque<cache::fill_result> scripted;  // used first
    std::vector<std::shared_ptr<net::steady_timer>> gates;
    std::size_t active = 0;
    std::size_t most_active = 0;

    day_filler(net::io_context& io, const sync::time_source& c) : ioc(io), clock(c) {}

    net::awaitable<cache::fill_result> fill(cache::fill_request request) override {
        requests.push_back(request);
        auto day = std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(clock.system_now())}.day();
        most_active = std::max(most_active, ++active);
        if (gated) {
            auto gate = std::make_shared<net::steady_timer>(ioc, net::steady_timer::time_point::max());
            gates.push_back(gate);
            co_await gate->async_wait(net::as_tuple(net::use_awaitable));
        }
        --active;
        if (!scripted.empty()) {
            auto r = scripted.front();
            scripted.pop_front();
            co_return r;
        }
        cache::fill_result r;
        r.status = 200;
        r.headers = {{"Content-Type", "application/json; charset=utf-8"}};
        r.body = request.user_id + " day " + std::to_string(unsigned(day));
        co_return r;
    }

    void release() {
        for (auto& g : gates) g->cancel();
        gates.clear();
    }

    std::size_t ahead_fills() const {
        std::size_t n = 0;
        for (const auto& r : requests) n += r.ahead ? 1 : 0;
        return n;
    }
};

struct fixture {
    conf::cache_config config = make_config();
    sync::manual_time_source clock{day_before + 23h + 50min};
    cache::service svc{config, clock};
    day_filler filler{ioc, clock};
    cache::midnight_refill refill{svc, config, clock, {&filler, &filler}};
    std::vector<cache::cache_answer> answers;
    // Last: destroyed first, with the coroutine frames that refer to the above.
    net::io_context ioc;

    // The refill's waits hold timers of ioc: let go of them while it exists.
    ~fixture() { refill.stop(); }

    void spawn(std::string user, std::size_t route = 0) {
        net::co_spawn(
            ioc,
            [this, user, route]() -> net::awaitable<void> {
                cache::cache_request r{route, user, "", true};
                cache::header_list headers{{"Authorization", "Bearer t"}};
                answers.push_back(co_await svc.serve(r, std::move(headers), filler));
            },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
    }

    // Runs handlers until `done` holds, with a deadline.
    template <class Pred>
    void run_until(Pred done, const char* what) {
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            ioc.restart();
            ioc.run_one_for(20ms);
        }
        INFO(what);
        REQUIRE(done());
    }

    void settle() {
        ioc.restart();
        ioc.poll();
    }

    cache::cache_answer serve_one(std::string user, std::size_t route = 0) {
        auto before = answers.size();
        spawn(std::move(user), route);
        run_until([&] { return answers.size() > before; }, "the answer");
        settle();
        return answers.back();
    }

    // Moves the clock to 00:00:00 + `past` of the next day and runs what is due.
    void to_midnight(std::chrono::seconds past = 0s) {
        auto target = day_before + std::chrono::days{1} + past;
        clock.advance(target - clock.system_now());
        settle();
    }
};

}  // namespace

TEST_CASE("midnight refill: the day-bound entries read recently are refilled, at most concurrency at once",
          "[unit]") {
    fixture f;
    for (int i = 0; i < 10; ++i) f.serve_one("u" + std::to_string(i));  // 23:50, stored
    f.serve_one("p1", 1);                                               // a route not day-bound
    f.clock.advance(8min);                                              // 23:58
    for (int i = 0; i < 7; ++i) CHECK(f.serve_one("u" + std::to_string(i)).kind == answer_kind::hit);
    f.serve_one("p1", 1);
    const auto fills_before = f.filler.requests.size();
    REQUIRE(fills_before == 11);

    f.refill.start(f.ioc.get_executor());
    f.settle();
    f.filler.gated = true;
    f.to_midnight(1s);
    // u0..u6 (read at 23:58, within recent = 5 min): 3 at once.
    f.run_until([&] { return f.filler.requests.size() == fills_before + 3; }, "the first 3 refills");
    f.settle();
    CHECK(f.filler.requests.size() == fills_before + 3);
    CHECK(f.filler.active == 3);
    for (std::size_t i = fills_before; i < f.filler.requests.size(); ++i) {
        CHECK(f.filler.requests[i].ahead);
        CHECK(f.filler.requests[i].background);
        CHECK(f.filler.requests[i].headers.empty());
        CHECK(f.filler.requests[i].route == "overview");
    }
    while (f.refill.stats().runs.load() == 0) {
        f.filler.release();
        f.run_until([&] { return f.filler.active > 0 || f.refill.stats().runs.load() == 1; }, "the next refills");
        f.settle();
    }
    CHECK(f.filler.most_active == 3);
    CHECK(f.filler.ahead_fills() == 7);
    CHECK(f.refill.stats().selected.load() == 7);
    CHECK(f.refill.stats().refilled.load() == 7);
    CHECK(f.refill.stats().max_in_flight.load() == 3);
    std::set<std::string> refilled;
    for (std::size_t i = fills_before; i < f.filler.requests.size(); ++i)
        refilled.insert(f.filler.requests[i].user_id);
    CHECK(refilled == std::set<std::string>{"u0", "u1", "u2", "u3", "u4", "u5", "u6"});

    // Read recently: a fresh hit with today's answer. Not read recently: its
    // reader waits for a fill, and gets today's answer too.
    f.filler.gated = false;
    auto recent = f.serve_one("u3");
    CHECK(recent.kind == answer_kind::hit);
    CHECK(body_of(recent) == "u3 day 29");
    auto old = f.serve_one("u8");
    CHECK(old.kind == answer_kind::miss_stored);
    CHECK(body_of(old) == "u8 day 29");
    CHECK(f.filler.ahead_fills() == 7);
}

TEST_CASE("midnight refill: max_entries takes the most recently read, and the next midnight refills again",
          "[unit]") {
    fixture f;
    f.config.midnight_refill.max_entries = 2;
    f.config.midnight_refill.recent = 15min;
    for (int i = 0; i < 4; ++i) {
        f.serve_one("u" + std::to_string(i));
        f.clock.advance(30s);
    }
    f.refill.start(f.ioc.get_executor());
    f.settle();
    f.to_midnight(1s);
    INFO("selected " << f.refill.stats().selected.load() << " refilled " << f.refill.stats().refilled.load()
                     << " fills " << f.filler.requests.size());
    f.run_until([&] { return f.refill.stats().runs.load() == 1; }, "the first pass");
    std::set<std::string> refilled;
    for (const auto& r : f.filler.requests)
        if (r.ahead) refilled.insert(r.user_id);
    CHECK(refilled == std::set<std::string>{"u2", "u3"});

    // A day later, u3 read at 23:59: refilled again; the others not read.
    f.clock.advance(std::chrono::days{1} - 2min);
    CHECK(body_of(f.serve_one("u3")) == "u3 day 29");
    f.clock.advance(2min);
    f.settle();
    f.run_until([&] { return f.refill.stats().runs.load() == 2; }, "the second pass");
    CHECK(f.filler.ahead_fills() == 3);
    CHECK(f.filler.requests.back().user_id == "u3");
    CHECK(body_of(f.serve_one("u3")) == "u3 day 30");
}

TEST_CASE("midnight refill: a request before its entry's refill waits and gets today's answer, never yesterday's",
          "[unit]") {
    fixture f;
    f.config.midnight_refill.concurrency = 1;
    f.config.midnight_refill.spread = 30s;
    for (const char* u : {"a", "b", "c"}) f.serve_one(u);  // 23:50
    f.clock.advance(9min);                                 // 23:59: read, most recent last
    for (const char* u : {"c", "b", "a"}) {
        CHECK(f.serve_one(u).kind == answer_kind::hit);
        f.clock.advance(1s);
    }
    f.refill.start(f.ioc.get_executor());
    f.settle();

    f.filler.gated = true;
    f.to_midnight();
    // "a" (the most recent) refills at 00:00:00, "b" at 00:00:10, "c" at 00:00:20.
    f.run_until([&] { return f.filler.ahead_fills() == 1; }, "the refill of a");
    CHECK(f.filler.requests.back().user_id == "a");

    // A reader of "a" joins its refill and waits for it.
    auto before = f.answers.size();
    f.spawn("a");
    f.settle();
    CHECK(f.answers.size() == before);
    // A reader of "c" (refill not started) fills it itself and waits for that.
    f.spawn("c");
    f.settle();
    CHECK(f.answers.size() == before);
    CHECK(f.filler.requests.back().user_id == "c");
    CHECK_FALSE(f.filler.requests.back().ahead);
    f.filler.release();
    f.run_until([&] { return f.answers.size() == before + 2; }, "both readers answered");
    for (std::size_t i = before; i < f.answers.size(); ++i) {
        CHECK(body_of(f.answers[i]).ends_with(" day 29"));
        CHECK(f.answers[i].kind != answer_kind::stale);
        CHECK(f.answers[i].kind != answer_kind::stale_if_error);
    }

    // "b" at 00:00:10, then "c" skipped at 00:00:20: a request refilled it.
    f.filler.gated = false;
    f.clock.advance(10s);
    f.run_until([&] { return f.refill.stats().refilled.load() == 2; }, "the refill of b");
    f.clock.advance(10s);
    f.run_until([&] { return f.refill.stats().runs.load() == 1; }, "the pass");
    CHECK(f.refill.stats().skipped.load() == 1);
    CHECK(f.filler.ahead_fills() == 2);
    auto b = f.serve_one("b");
    CHECK(b.kind == answer_kind::hit);
    CHECK(body_of(b) == "b day 29");
}

TEST_CASE("midnight refill: a refill that fails without a client leaves its readers to fill with theirs",
          "[unit]") {
    fixture f;
    f.serve_one("a");
    f.clock.advance(9min);
    f.serve_one("a");
    f.refill.start(f.ioc.get_executor());
    f.settle();
    f.filler.gated = true;
    cache::fill_result failed;
    failed.failed = true;
    f.filler.scripted.push_back(failed);  // e.g. PostgreSQL down: the legacy needs the client's token
    f.to_midnight();
    f.run_until([&] { return f.filler.ahead_fills() == 1; }, "the refill");
    auto before = f.answers.size();
    f.spawn("a");
    f.settle();
    f.filler.gated = false;
    f.filler.release();
    f.run_until([&] { return f.answers.size() == before + 1; }, "the reader answered");
    CHECK(body_of(f.answers.back()) == "a day 29");
    CHECK(f.answers.back().kind == answer_kind::miss_stored);
    CHECK(f.filler.requests.back().headers.size() == 1);  // its own Authorization
    CHECK(f.refill.stats().failed.load() == 1);
    // No backoff came of it: the next reader is a hit.
    CHECK(f.serve_one("a").kind == answer_kind::hit);
}

TEST_CASE("midnight refill: disabled, nothing is refilled", "[unit]") {
    fixture f;
    f.config.midnight_refill.enabled = false;
    f.serve_one("a");
    f.clock.advance(9min);
    f.serve_one("a");
    f.refill.start(f.ioc.get_executor());
    f.settle();
    f.to_midnight(30s);
    f.settle();
    CHECK(f.filler.ahead_fills() == 0);
    auto a = f.serve_one("a");
    CHECK(a.kind == answer_kind::miss_stored);  // past_day_end: not yesterday's
    CHECK(body_of(a) == "a day 29");
}
