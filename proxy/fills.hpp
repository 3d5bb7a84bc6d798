#pragma once
// The fills of the cached routes (cache/filler.hpp's seam):
// - upstream_fill forwards the request to the legacy backend and keeps its
//   answer (the cache stores only what its policy allows: 2xx, no Set-Cookie);
// - route_fill computes the answer from PostgreSQL (db/queries/<query>.sql),
//   completes /api/agents with the external agent API, and falls back to
//   upstream_fill whenever PostgreSQL cannot answer (not configured, down,
//   timed out, or no active user: then the legacy answers 403 itself).

#include "cache/filler.hpp"
#include "conf/config.hpp"

#include <atomic>
#include <cstdint>

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

class upstream_fill final : public cache::filler {
public:
    explicit upstream_fill(upstream::pool& pool) : pool_(pool) {}
    boost::asio::awaitable<cache::fill_result> fill(cache::fill_request request) override;

private:
    upstream::pool& pool_;
};

struct fill_stats {
    std::atomic<std::uint64_t> postgres{0};   // answers computed from PostgreSQL
    std::atomic<std::uint64_t> fallbacks{0};  // forwarded to the legacy instead
    std::atomic<std::uint64_t> no_user{0};    // of which: no active user (legacy says 403)
    std::atomic<std::uint64_t> enriched{0};   // answers completed by the external API
    std::atomic<std::uint64_t> degraded{0};   // of which some agent degraded
};

class route_fill final : public cache::filler {
public:
    // `db` and `external` may be null (not configured).
    route_fill(const conf::route_config& route, db::pool* db, external::client* external,
               upstream_fill& fallback, fill_stats& stats)
        : route_(route), db_(db), external_(external), fallback_(fallback), stats_(stats) {}

    boost::asio::awaitable<cache::fill_result> fill(cache::fill_request request) override;

private:
    const conf::route_config& route_;
    db::pool* db_;
    external::client* external_;
    upstream_fill& fallback_;
    fill_stats& stats_;
};

boost::json::object to_json(const fill_stats& stats);

}  // namespace sidecache::proxy
