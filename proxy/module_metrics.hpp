#pragma once
// The series of the modules that keep their own counters (the cache's per
// route table, the PostgreSQL pool and its listener, the external client),
// declared once in the metrics registry: /stats and /metrics render them.
// Each one reads its module's counters when rendered; nothing is added to
// the modules' hot paths.

#include "conf/config.hpp"
#include "metrics/registry.hpp"

namespace sidecache::cache {
class service;
class midnight_refill;
}  // namespace sidecache::cache
namespace sidecache::db {
class pool;
}  // namespace sidecache::db
namespace sidecache::external {
class client;
}  // namespace sidecache::external
namespace sidecache::l2 {
class second_level_cache;
}  // namespace sidecache::l2

namespace sidecache::proxy {

class warmup;

// sidecache_build_info{version="..."} 1
void declare_build_info(metrics::registry& r);
// "cache" in /stats: per route results, fills, entries, bytes; max_bytes.
void declare_cache_metrics(metrics::registry& r, const cache::service& cache, const conf::cache_config& cfg);
// "midnight_refill" in /stats: the refill of the day-bound entries after UTC midnight.
void declare_midnight_metrics(metrics::registry& r, const cache::midnight_refill& refill);
// "warmup" in /stats: the warm-up passes (cache.warmup) and their fills.
void declare_warmup_metrics(metrics::registry& r, const warmup& warm);
// "external" in /stats.
// The second level on Redis (l2.*, sidecache_l2_*).
void declare_l2_metrics(metrics::registry& r, const l2::second_level_cache& l2);

void declare_external_metrics(metrics::registry& r, const external::client& client);
// "database" in /stats: the query pool and the view refresher.
void declare_database_metrics(metrics::registry& r, const db::pool& database);
// "invalidation" in /stats: the LISTEN/NOTIFY listener and its heartbeat.
void declare_listener_metrics(metrics::registry& r, const db::pool& database, const conf::database_config& cfg);

}  // namespace sidecache::proxy
