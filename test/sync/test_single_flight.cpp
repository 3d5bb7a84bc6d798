// The single-flight table on an io_context and a manual clock: one leader per
// key, joiners get its result, a leader that throws still ends its flight, a
// joiner that times out leaves the leader alone, detach_if starts anew.
#include "sync/single_flight.hpp"
#include "sync/time_source.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using namespace sidecache;
using namespace std::chrono_literals;
namespace net = boost::asio;
using sync::join_result;

namespace {

using table = sync::single_flight<std::string>;

struct joiner_end {
    join_result how;
    std::optional<std::string> result;
};

struct fixture {
    sync::manual_time_source clock;
    net::io_context ioc;
    table flights{clock};
    std::vector<std::optional<joiner_end>> ends;

    // Joins `key` (which must be in flight) and waits up to `timeout`.
    std::size_t join(std::string key, std::chrono::seconds timeout = 5s, std::size_t max = 100) {
        auto joined = flights.join_or_start(key);
        REQUIRE_FALSE(joined.lead);
        auto i = ends.size();
        ends.emplace_back();
        auto deadline = clock.steady_now() + timeout;
        net::co_spawn(
            ioc,
            [this, i, fl = joined.flight, deadline, max]() -> net::awaitable<void> {
                auto how = co_await fl->wait(deadline, max);
                ends[i] = joiner_end{how, how == join_result::landed ? fl->result() : std::nullopt};
            },
            net::detached);
        return i;
    }

    void settle() {
        ioc.restart();
        ioc.poll();
    }
};

}  // namespace

TEST_CASE("single_flight: the first caller of a key leads, the others join", "[unit]") {
    fixture f;
    auto a = f.flights.join_or_start("k");
    auto b = f.flights.join_or_start("k");
    auto other = f.flights.join_or_start("other");
    CHECK(a.lead.has_value());
    CHECK_FALSE(b.lead.has_value());
    CHECK(b.flight == a.flight);
    CHECK(other.lead.has_value());
    CHECK(f.flights.size() == 2);
}

TEST_CASE("single_flight: joiners get the leader's result, and the key leaves the table", "[unit]") {
    fixture f;
    auto lead = f.flights.join_or_start("k");
    for (int i = 0; i < 3; ++i) f.join("k");
    f.settle();
    CHECK_FALSE(f.ends[0]);
    lead.lead->land("answer");
    CHECK(f.flights.size() == 0);
    f.settle();
    for (auto& e : f.ends) {
        REQUIRE(e);
        CHECK(e->how == join_result::landed);
        CHECK(e->result == "answer");
    }
    // A joiner arriving after landing (it held the flight) sees the result at once.
    auto late = lead.flight;
    std::optional<join_result> how;
    net::co_spawn(
        f.ioc, [&]() -> net::awaitable<void> { how = co_await late->wait(f.clock.steady_now(), 1); },
        net::detached);
    f.settle();
    CHECK(how == join_result::landed);
    CHECK(f.flights.join_or_start("k").lead.has_value());
}

TEST_CASE("single_flight: a leader that throws lands empty; the next caller leads anew", "[unit]") {
    fixture f;
    auto joined = f.flights.join_or_start("k");
    auto leading = [&f](table::leader leader) -> net::awaitable<void> {
        auto mine = std::move(leader);
        throw std::runtime_error("the work failed");
        mine.land("never");
        co_return;
    };
    bool threw = false;
    net::co_spawn(f.ioc, leading(std::move(*joined.lead)),
                  [&threw](std::exception_ptr e) { threw = e != nullptr; });
    f.join("k");
    f.settle();
    CHECK(threw);
    REQUIRE(f.ends[0]);
    CHECK(f.ends[0]->how == join_result::landed);
    CHECK_FALSE(f.ends[0]->result);
    CHECK(f.flights.size() == 0);
    CHECK(f.flights.join_or_start("k").lead.has_value());
}

TEST_CASE("single_flight: a joiner that times out does not cancel the leader", "[unit]") {
    fixture f;
    auto lead = f.flights.join_or_start("k");
    auto early = f.join("k", 1s);
    auto patient = f.join("k", 10s);
    f.settle();
    f.clock.advance(1s);
    f.settle();
    REQUIRE(f.ends[early]);
    CHECK(f.ends[early]->how == join_result::timed_out);
    CHECK_FALSE(f.ends[patient]);
    // Still in flight: a new caller joins it rather than starting another.
    CHECK_FALSE(f.flights.join_or_start("k").lead);
    lead.lead->land("late answer");
    f.settle();
    REQUIRE(f.ends[patient]);
    CHECK(f.ends[patient]->result == "late answer");
}

TEST_CASE("single_flight: joiners beyond max_waiters are refused at once", "[unit]") {
    fixture f;
    auto lead = f.flights.join_or_start("k");
    f.join("k", 5s, 2);
    f.join("k", 5s, 2);
    f.settle();
    auto third = f.join("k", 5s, 2);
    f.settle();
    REQUIRE(f.ends[third]);
    CHECK(f.ends[third]->how == join_result::overloaded);
    lead.lead->land("x");
    f.settle();
    CHECK(f.ends[0]->how == join_result::landed);
}

TEST_CASE("single_flight: a detached flight lands for its joiners; later callers start anew", "[unit]") {
    fixture f;
    auto first = f.flights.join_or_start("k");
    auto before = f.join("k");
    CHECK(f.flights.detach_if([](std::string_view key) { return key == "k"; }) == 1);
    CHECK(first.flight->detached());
    auto second = f.flights.join_or_start("k");
    REQUIRE(second.lead);
    CHECK(second.flight != first.flight);
    auto after = f.join("k");
    // The detached leader lands: only its own joiners see it, and it does
    // not take the new flight out of the table.
    first.lead->land("old");
    f.settle();
    CHECK(f.ends[before]->result == "old");
    CHECK_FALSE(f.ends[after]);
    CHECK(f.flights.size() == 1);
    second.lead->land("new");
    f.settle();
    CHECK(f.ends[after]->result == "new");
}
