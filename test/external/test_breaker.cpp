// The circuit breaker state machine on a manual clock.
#include "external/breaker.hpp"

#include <catch2/catch.hpp>

using namespace sidecache;
using namespace sidecache::external;
using ms = std::chrono::milliseconds;
using state = circuit_breaker::state;
using admission = circuit_breaker::admission;

namespace {
conf::breaker_config config() {
    conf::breaker_config c;
    c.consecutive_failures = 5;
    c.failure_rate = 0.5;
    c.window = ms{10'000};
    c.min_requests = 20;
    c.cool_down = ms{5'000};
    return c;
}
const circuit_breaker::time_point t0 = circuit_breaker::time_point{} + std::chrono::hours{1};
}  // namespace

TEST_CASE("breaker opens after N consecutive failures and rejects while open", "[unit]") {
    circuit_breaker b(config());
    for (int i = 0; i < 4; ++i) {
        REQUIRE(b.admit(t0) == admission::allowed);
        b.on_failure(t0);
    }
    CHECK(b.current(t0) == state::closed);
    SECTION("a success resets the count") {
        b.on_success(t0);
        b.on_failure(t0);
        CHECK(b.current(t0) == state::closed);
        CHECK(b.consecutive_failures() == 1);
    }
    SECTION("the fifth failure opens it") {
        b.on_failure(t0);
        CHECK(b.current(t0) == state::open);
        CHECK(b.admit(t0) == admission::rejected);
        CHECK(b.admit(t0 + ms{4'999}) == admission::rejected);
        CHECK(b.times_opened() == 1);
    }
}

TEST_CASE("breaker opens on the failure rate over the window", "[unit]") {
    circuit_breaker b(config());
    // Alternate: never 5 in a row, but half of 20 requests fail.
    for (int i = 0; i < 19; ++i) {
        b.admit(t0);
        (i % 2 == 0) ? b.on_failure(t0 + ms{i}) : b.on_success(t0 + ms{i});
    }
    CHECK(b.current(t0 + ms{19}) == state::closed);  // 10/19 but fewer than min_requests
    SECTION("the 20th request at 50% opens it") {
        b.on_success(t0 + ms{19});  // 10/20 failures; the rate is checked on failures
        b.on_failure(t0 + ms{20});  // 11/21
        CHECK(b.current(t0 + ms{20}) == state::open);
    }
    SECTION("old outcomes leave the window") {
        // 10 s later the first requests are out of the window: 1 failure of 1.
        b.on_failure(t0 + ms{11'000});
        CHECK(b.current(t0 + ms{11'000}) == state::closed);
    }
    SECTION("a rate under the threshold keeps it closed") {
        for (int i = 0; i < 20; ++i) b.on_success(t0 + ms{30});
        b.on_failure(t0 + ms{31});  // 11/40
        CHECK(b.current(t0 + ms{31}) == state::closed);
    }
}

TEST_CASE("half-open lets one probe through at a time", "[unit]") {
    circuit_breaker b(config());
    for (int i = 0; i < 5; ++i) b.on_failure(t0);
    REQUIRE(b.current(t0) == state::open);
    const auto later = t0 + ms{5'000};
    CHECK(b.current(later) == state::half_open);
    REQUIRE(b.admit(later) == admission::probe);
    CHECK(b.admit(later) == admission::rejected);  // the probe is in flight
    CHECK(b.admit(later + ms{1}) == admission::rejected);

    SECTION("the probe succeeds: closed, calls flow") {
        b.on_success(later + ms{10}, true);
        CHECK(b.current(later + ms{10}) == state::closed);
        CHECK(b.admit(later + ms{10}) == admission::allowed);
        CHECK(b.consecutive_failures() == 0);
    }
    SECTION("the probe fails: open again for a whole cool-down") {
        b.on_failure(later + ms{10}, true);
        CHECK(b.current(later + ms{10}) == state::open);
        CHECK(b.admit(later + ms{4'000}) == admission::rejected);
        CHECK(b.admit(later + ms{5'010}) == admission::probe);
        CHECK(b.times_opened() == 2);
    }
    SECTION("late reports of calls admitted before it opened change nothing") {
        b.on_success(later + ms{10});
        CHECK(b.admit(later + ms{10}) == admission::rejected);
        CHECK(b.current(later + ms{10}) == state::half_open);
    }
}
