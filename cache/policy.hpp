#pragma once
// Pure cache policy: what may be stored, how long it stays fresh, and how
// an entry's age classifies it. No I/O, time passed in.

#include "cache/filler.hpp"

#include <chrono>

namespace sidecache::cache {

// A fill that gives the client no usable answer: stale-if-error applies.
bool is_failure(const fill_result& result);

// May this answer be stored? Never a failure, a 206, a Content-Encoding
// other than identity, Set-Cookie or Cache-Control: no-store; non-2xx only
// when `store_non_2xx`.
bool is_storable(const fill_result& result, bool store_non_2xx = false);

// The first UTC midnight strictly after `t`.
std::chrono::system_clock::time_point next_utc_midnight(std::chrono::system_clock::time_point t);

// Until when an answer computed at `computed_at` (system time) and stored at
// `steady_now`/`system_now` is fresh: now + ttl, capped at the next UTC
// midnight after computed_at when `utc_day_bound`.
std::chrono::steady_clock::time_point fresh_until(std::chrono::milliseconds ttl, bool utc_day_bound,
                                                  std::chrono::system_clock::time_point computed_at,
                                                  std::chrono::steady_clock::time_point steady_now,
                                                  std::chrono::system_clock::time_point system_now);

enum class freshness {
    fresh,           // serve it
    stale,           // within stale_while_revalidate: serve it and refresh in the background
    stale_if_error,  // only usable if a fill fails
    dead,            // useless: drop it
};

freshness classify(std::chrono::steady_clock::time_point now,
                   std::chrono::steady_clock::time_point fresh_until,
                   std::chrono::milliseconds stale_while_revalidate,
                   std::chrono::milliseconds stale_if_error);

// An answer of a utc_day_bound route is wrong, not stale, once the UTC
// midnight after `computed_at` has passed: a `stale` state becomes
// `stale_if_error` (served only if its refill fails). Other states are kept.
freshness past_day_end(freshness state, std::chrono::system_clock::time_point computed_at,
                       std::chrono::system_clock::time_point system_now);

}  // namespace sidecache::cache
