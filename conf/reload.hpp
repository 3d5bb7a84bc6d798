#pragma once
// What a reload takes from a newly loaded configuration file (pure: no I/O).
// The keys that can change while serving are copied over the running
// configuration; every other key that differs "needs a restart" and keeps
// its running value. Live (docs/operations.md, "Reload"):
//   server: header_timeout, idle_timeout, body_timeout, drain_timeout,
//           max_header_bytes, max_body_bytes, max_pipelined, max_connections
//   upstream: max_connections, max_idle_connections, connect_timeout,
//           response_timeout, idle_timeout
//   admin.token; log.level, log.access_log
//   cache.routes[i]: ttl, stale_while_revalidate, stale_if_error,
//           utc_day_bound, max_waiters, wait_timeout, fill_timeout,
//           failure_backoff, failure_backoff_max, degraded_ttl, as long as
//           the list of routes (names, paths, query parameters, fills) is
//           unchanged (else the whole list needs a restart)
//   external: concurrency, try_timeout, deadline, foreground, background,
//           breaker
// A new live key goes in copy_live() (conf/reload.cpp) and in the module
// that reads it (docs/architecture.md, "Where a new thing goes").

#include "conf/config.hpp"

#include <string>
#include <vector>

namespace sidecache::conf {

struct reload_plan {
    config effective;                        // running, with the live keys of the new file
    std::vector<std::string> applied;        // key paths that change now: "cache.routes[0].ttl"
    std::vector<std::string> needs_restart;  // key paths that differ and were left as they are
};

reload_plan plan_reload(const config& running, const config& loaded);

}  // namespace sidecache::conf
