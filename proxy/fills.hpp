#pragma once
// The fills of the cached routes (cache/filler.hpp's seam):
// - upstream_fill forwards the request to the legacy backend and keeps its
//   answer (the cache stores only what its policy allows: 2xx, no Set-Cookie);
// - route_fill computes the answer from PostgreSQL (db/queries/<query>.sql),
//   completes /api/agents with the external agent API, and falls back to
//   upstream_fill whenever PostgreSQL cannot answer (not configured, down,
//   timed out, or no active user: then the legacy answers 403 itself), if
//   the legacy can answer before the fill's deadline: a route whose legacy
//   answers in 20 s is not forwarded with 3 s left (the fill fails at once,
//   stale-if-error applies), so a failing database does not pile doomed
//   requests onto the legacy.

#include "cache/filler.hpp"
#include "conf/config.hpp"
#include "metrics/registry.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace boost::json {
class object;
}
namespace sidecache::db {
class pool;
}
namespace sidecache::upstream {
class pool;
}  // namespace sidecache::upstream

namespace sidecache::external {
class client;
}  // namespace sidecache::external

namespace sidecache::proxy {

// The tag of a cached answer with some agent "stale" or "unavailable".
inline constexpr std::string_view degraded_tag = "degraded";

class upstream_fill final : public cache::filler {
public:
    explicit upstream_fill(upstream::pool& pool) : pool_(pool) {}
    boost::asio::awaitable<cache::fill_result> fill(cache::fill_request request) override;

private:
    upstream::pool& pool_;
};

// The fills' counters and times, declared in the metrics registry
// (rendered under "fills" in /stats).
struct fill_stats {
    explicit fill_stats(metrics::registry& r);

    metrics::counter postgres;   // answers computed from PostgreSQL
    metrics::counter fallbacks;  // forwarded to the legacy instead
    metrics::counter fallbacks_skipped;  // not forwarded: the legacy could not answer in time
    metrics::counter no_user;    // of which: no active user (legacy says 403)
    metrics::counter enriched;   // answers completed by the external API
    metrics::counter degraded;   // of which some agent degraded
    // Time per fill source: the PostgreSQL query, the legacy fetch, the external enrichment.
    metrics::histogram postgres_duration, legacy_duration, external_duration;
};

class route_fill final : public cache::filler {
public:
    // `db` and `external` may be null (not configured).
    route_fill(const conf::route_config& route, db::pool* db, external::client* external,
               upstream_fill& fallback, fill_stats& stats)
        : route_(&route), db_(db), external_(external), fallback_(fallback), stats_(stats) {}

    boost::asio::awaitable<cache::fill_result> fill(cache::fill_request request) override;

    // A reload: the same route with other settings (degraded_ttl), read by
    // fills from now on; `next` outlives this (conf::live_config keeps it).
    void reconfigure(const conf::route_config& next) { route_.store(&next, std::memory_order_release); }

private:
    using clock = std::chrono::steady_clock;
    // Whether the legacy, as fast as it has answered this route lately, can
    // answer before `deadline`. Unknown: yes. Once known too slow, no,
    // except for one try per probe interval, which keeps the estimate current.
    bool legacy_in_time(clock::time_point deadline) const;
    void learn_legacy(clock::duration took);
    boost::asio::awaitable<cache::fill_result> fall_back(cache::fill_request request, bool no_user);

    std::atomic<const conf::route_config*> route_;
    db::pool* db_;
    external::client* external_;
    upstream_fill& fallback_;
    fill_stats& stats_;
    // The legacy's answer time for this route: a moving mean of its
    // fallbacks (ms, 0 until the first), and when it was last tried.
    std::atomic<std::int64_t> legacy_ms_{0};
    std::atomic<std::int64_t> legacy_tried_ms_{0};

    boost::asio::awaitable<cache::fill_result> legacy(cache::fill_request request);
};

}  // namespace sidecache::proxy
