#pragma once
// Counters per cached route, read by the admin /stats endpoint.

#include <boost/json/object.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sidecache::cache {

struct route_counters {
    std::atomic<std::uint64_t> hits{0};          // fresh answers from the cache
    std::atomic<std::uint64_t> misses{0};        // requests that had to wait for a fill
    std::atomic<std::uint64_t> stale{0};         // stale answers (not counted in hits)
    std::atomic<std::uint64_t> coalesced{0};     // misses that joined another request's fill
    std::atomic<std::uint64_t> fills{0};         // fills started (foreground and background)
    std::atomic<std::uint64_t> failed_fills{0};  // fills that failed or answered 5xx
    std::atomic<std::uint64_t> backed_off{0};    // requests answered at once: their key's backoff ran
    std::atomic<std::uint64_t> not_stored{0};  // fills whose answer was not storable or raced an invalidation
    std::atomic<std::uint64_t> timeouts{0};    // waiters that gave up (stale or 503)
    std::atomic<std::uint64_t> overloaded{0};  // requests refused a wait: too many waiters
    std::atomic<std::uint64_t> evictions{0};   // entries evicted to stay within max_bytes
    std::atomic<std::uint64_t> invalidated{0};  // entries hit by an invalidation (soft or hard)
    std::atomic<std::int64_t> entries{0};       // entries stored now
    std::atomic<std::int64_t> bytes{0};         // their bytes (see store::entry_cost)
};

class stats_table {
public:
    explicit stats_table(std::vector<std::string> route_names);

    route_counters& operator[](std::size_t route) { return counters_[route]; }
    const route_counters& operator[](std::size_t route) const { return counters_[route]; }
    std::size_t size() const { return names_.size(); }

    // {"overview": {"hits": 1, ...}, ...}
    boost::json::object to_json() const;

private:
    std::vector<std::string> names_;
    std::unique_ptr<route_counters[]> counters_;
};

}  // namespace sidecache::cache
