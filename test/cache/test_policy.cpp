// Pure policy: keys, storability, freshness, and the bytes of an answer.
#include "cache/key.hpp"
#include "cache/policy.hpp"
#include "cache/response.hpp"
#include "support/answer_bytes.hpp"

#include <catch2/catch.hpp>

using namespace sidecache;
using namespace std::chrono_literals;
using cache::freshness;

TEST_CASE("key: only the route's parameters count, sorted and re-encoded", "[unit]") {
    std::vector<std::string> params{"range", "agent"};
    CHECK(cache::normalize_query("", params) == "");
    CHECK(cache::normalize_query("x=1", {}) == "");
    CHECK(cache::normalize_query("range=7d&utm=1&agent=b", params) == "agent=b&range=7d");
    CHECK(cache::normalize_query("agent=b&range=7d", params) == "agent=b&range=7d");
    CHECK(cache::normalize_query("agent=b&agent=a", params) == "agent=a&agent=b");
    CHECK(cache::normalize_query("range=a+b", params) == "range=a%20b");
    CHECK(cache::normalize_query("range=a%20b", params) == "range=a%20b");
    CHECK(cache::normalize_query("range=%E2%9C%93", params) == "range=%E2%9C%93");
    CHECK_FALSE(cache::normalize_query("range=%zz", params));
    CHECK(cache::make_key("overview", "u1", "range=7d") == "overview\nu1\nrange=7d");
    // A user id cannot forge another user's key: the query never holds '\n'.
    CHECK(cache::make_key("overview", "u1\nx", "") != cache::make_key("overview", "u1", "x"));
}

TEST_CASE("policy: what may be stored", "[unit]") {
    cache::fill_result r;
    r.status = 200;
    CHECK(cache::is_storable(r));
    r.status = 204;
    CHECK(cache::is_storable(r));
    r.status = 404;
    CHECK_FALSE(cache::is_storable(r));
    CHECK(cache::is_storable(r, true));
    r.status = 503;
    CHECK_FALSE(cache::is_storable(r, true));
    CHECK(cache::is_failure(r));
    r.status = 200;
    r.failed = true;
    CHECK_FALSE(cache::is_storable(r));
    r.failed = false;
    r.headers = {{"set-cookie", "sid=1"}};
    CHECK_FALSE(cache::is_storable(r));
    r.headers = {{"Cache-Control", "max-age=0, No-Store"}};
    CHECK_FALSE(cache::is_storable(r));
    r.headers = {{"Cache-Control", "private, max-age=60"}};
    CHECK(cache::is_storable(r));
    r.headers = {{"Cache-Control", "x-no-store-ish"}};
    CHECK(cache::is_storable(r));
    // A part, or a body some clients cannot read, is not the answer.
    r.headers = {{"Content-Encoding", "gzip"}};
    CHECK_FALSE(cache::is_storable(r));
    r.headers = {{"content-encoding", "Identity"}};
    CHECK(cache::is_storable(r));
    r.headers.clear();
    r.status = 206;
    CHECK_FALSE(cache::is_storable(r));
    CHECK_FALSE(cache::is_storable(r, true));
}

TEST_CASE("policy: freshness, windows and UTC midnight", "[unit]") {
    using namespace std::chrono;
    auto t0 = steady_clock::time_point{} + hours{1000};
    auto until = t0 + 30s;
    CHECK(cache::classify(t0, until, 10s, 60s) == freshness::fresh);
    CHECK(cache::classify(until, until, 10s, 60s) == freshness::stale);
    CHECK(cache::classify(until + 10s, until, 10s, 60s) == freshness::stale_if_error);
    CHECK(cache::classify(until + 60s, until, 10s, 60s) == freshness::dead);

    auto day = sys_days{year{2026} / 11 / 28};
    CHECK(cache::next_utc_midnight(day + 23h + 59min) == day + days{1});
    CHECK(cache::next_utc_midnight(day) == day + days{1});

    auto sys = day + 23h + 59min + 50s;
    CHECK(cache::fresh_until(30s, true, sys, t0, sys) == t0 + 10s);
    CHECK(cache::fresh_until(30s, false, sys, t0, sys) == t0 + 30s);
    CHECK(cache::fresh_until(30s, true, day + 9h, t0, day + 9h) == t0 + 30s);
    // Stored after midnight already: not fresh at all.
    CHECK(cache::fresh_until(30s, true, sys, t0, sys + 20s) == t0);

    // Past that midnight, stale-while-revalidate no longer serves it.
    CHECK(cache::past_day_end(freshness::stale, sys, sys + 9s) == freshness::stale);
    CHECK(cache::past_day_end(freshness::stale, sys, day + days{1}) == freshness::stale_if_error);
    CHECK(cache::past_day_end(freshness::stale_if_error, sys, day + days{1}) == freshness::stale_if_error);
    CHECK(cache::past_day_end(freshness::dead, sys, day + days{1}) == freshness::dead);
}

TEST_CASE("response: hop-by-hop headers dropped, per-response headers added", "[unit]") {
    auto bytes = cache::make_response_bytes("k", 200,
                                            {{"Content-Type", "application/json"},
                                             {"Connection", "close"},
                                             {"Content-Length", "999"},
                                             {"Transfer-Encoding", "chunked"},
                                             {"X-Evil", "a\r\nInjected: 1"},
                                             {"ETag", "\"v1\""}},
                                            "{}");
    CHECK(bytes.key() == "k");
    CHECK(bytes.head() ==
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"v1\"\r\nContent-Length: 2\r\n");
    auto a = cache::render(bytes, cache::answer_kind::stale_if_error, 12s, false);
    const auto all = test::bytes_of(a);
    CHECK(all.substr(bytes.head().size()) ==
          "Age: 12\r\nCache-Status: sidecache; hit; fwd=stale; detail=stale-if-error\r\n"
          "X-Cache: STALE\r\nConnection: close\r\n\r\n{}");
    CHECK_FALSE(a.keep_alive);
    // The body is written from the stored buffer, not a copy.
    CHECK(a.buffers.back().data() == bytes.body().data());
}
