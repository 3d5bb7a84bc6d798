// Backoff with full jitter and the retry decision: pure, no I/O.
#include "external/backoff.hpp"
#include "external/retry.hpp"

#include <catch2/catch.hpp>

using namespace sidecache;
using namespace sidecache::external;
using ms = std::chrono::milliseconds;

namespace {
const conf::retry_profile foreground{3, ms{50}, ms{200}, 2.0};
}

TEST_CASE("backoff ceiling grows by the multiplier and stops at max", "[unit]") {
    conf::retry_profile p{10, ms{50}, ms{1000}, 2.0};
    CHECK(backoff_ceiling(p, 1) == ms{50});
    CHECK(backoff_ceiling(p, 2) == ms{100});
    CHECK(backoff_ceiling(p, 3) == ms{200});
    CHECK(backoff_ceiling(p, 5) == ms{800});
    CHECK(backoff_ceiling(p, 6) == ms{1000});
    CHECK(backoff_ceiling(p, 1000) == ms{1000});  // no overflow however many retries
    SECTION("multiplier 3") {
        p.multiplier = 3.0;
        CHECK(backoff_ceiling(p, 3) == ms{450});
    }
}

TEST_CASE("full jitter draws from 0 up to the ceiling, excluded", "[unit]") {
    const auto [retry, unit, expected] = GENERATE(table<unsigned, double, long>({
        {1, 0.0, 0},
        {1, 0.5, 25},
        {1, 0.999999, 49},
        {2, 0.5, 50},
        {3, 0.25, 50},
        {4, 0.5, 100},  // capped at max 200
        {1, 7.0, 49},   // out-of-range draws are clamped
        {1, -1.0, 0},
    }));
    CHECK(backoff_delay(foreground, retry, unit) == ms{expected});
}

TEST_CASE("random_unit draws uniformly from 0 up to 1, excluded", "[unit]") {
    auto rng = random_unit();
    double lo = 1, hi = 0;
    for (int i = 0; i < 1000; ++i) {
        double u = rng();
        REQUIRE(u >= 0.0);
        REQUIRE(u < 1.0);
        lo = std::min(lo, u);
        hi = std::max(hi, u);
    }
    CHECK(lo < 0.1);
    CHECK(hi > 0.9);
}

TEST_CASE("what is retried: connect errors, timeouts, 5xx and 429, never other 4xx", "[unit]") {
    CHECK(is_retryable(try_outcome::connect_error));
    CHECK(is_retryable(try_outcome::transport_error));
    CHECK(is_retryable(try_outcome::timeout));
    CHECK(is_retryable(try_outcome::server_error));
    CHECK(is_retryable(try_outcome::rate_limited));
    CHECK_FALSE(is_retryable(try_outcome::ok));
    CHECK_FALSE(is_retryable(try_outcome::not_found));
    CHECK_FALSE(is_retryable(try_outcome::client_error));
    CHECK_FALSE(is_retryable(try_outcome::bad_response));
    CHECK_FALSE(is_retryable(try_outcome::rejected));
    // The breaker counts the host's failures, not its definitive answers.
    CHECK(is_host_failure(try_outcome::server_error));
    CHECK_FALSE(is_host_failure(try_outcome::not_found));
    CHECK_FALSE(is_host_failure(try_outcome::client_error));
}

TEST_CASE("decide_retry", "[unit]") {
    const ms plenty{10'000};
    SECTION("a 5xx after the first try: retry after the jittered backoff") {
        auto d = decide_retry(foreground, try_outcome::server_error, 1, std::nullopt, plenty, 0.5);
        CHECK(d.retry);
        CHECK(d.delay == ms{25});
    }
    SECTION("the second retry draws from a window twice as wide") {
        auto d = decide_retry(foreground, try_outcome::timeout, 2, std::nullopt, plenty, 0.5);
        CHECK(d.retry);
        CHECK(d.delay == ms{50});
    }
    SECTION("attempts counts every try: the third failure is final") {
        CHECK_FALSE(decide_retry(foreground, try_outcome::server_error, 3, std::nullopt, plenty, 0.5).retry);
    }
    SECTION("never a 404 or a 401") {
        CHECK_FALSE(decide_retry(foreground, try_outcome::not_found, 1, std::nullopt, plenty, 0.0).retry);
        CHECK_FALSE(decide_retry(foreground, try_outcome::client_error, 1, std::nullopt, plenty, 0.0).retry);
    }
    SECTION("429 waits for Retry-After when it is longer than the backoff") {
        auto d = decide_retry(foreground, try_outcome::rate_limited, 1, ms{1000}, plenty, 0.5);
        CHECK(d.retry);
        CHECK(d.delay == ms{1000});
    }
    SECTION("429 with a Retry-After shorter than the backoff keeps the backoff") {
        auto d = decide_retry(foreground, try_outcome::rate_limited, 1, ms{0}, plenty, 0.9);
        CHECK(d.retry);
        CHECK(d.delay == ms{45});
    }
    SECTION("Retry-After beyond the remaining deadline: give up now") {
        CHECK_FALSE(decide_retry(foreground, try_outcome::rate_limited, 1, ms{1000}, ms{700}, 0.5).retry);
    }
    SECTION("a backoff reaching the deadline: give up now") {
        CHECK_FALSE(decide_retry(foreground, try_outcome::server_error, 1, std::nullopt, ms{25}, 0.5).retry);
        CHECK(decide_retry(foreground, try_outcome::server_error, 1, std::nullopt, ms{26}, 0.5).retry);
    }
    SECTION("no time left at all") {
        CHECK_FALSE(decide_retry(foreground, try_outcome::timeout, 1, std::nullopt, ms{0}, 0.0).retry);
    }
}

TEST_CASE("parse_retry_after takes delta-seconds only", "[unit]") {
    CHECK(parse_retry_after("2") == ms{2000});
    CHECK(parse_retry_after(" 0 ") == ms{0});
    CHECK_FALSE(parse_retry_after(""));
    CHECK_FALSE(parse_retry_after("-1"));
    CHECK_FALSE(parse_retry_after("1.5"));
    CHECK_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
}
