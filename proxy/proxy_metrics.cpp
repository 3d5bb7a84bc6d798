// The proxy's and the upstream pool's series in the metrics registry.

#include "proxy/server_state.hpp"

#include "proxy/metric_help.hpp"

#include <string>

namespace sidecache::proxy {

namespace {

using metrics::json_path;

}  // namespace

proxy_stats::proxy_stats(metrics::registry& r)
    : connections_accepted(r.add_counter("sidecache_connections_accepted_total",
                                         "Client connections accepted.", {},
                                         {"proxy", "connections_accepted"})),
      connections_rejected(r.add_counter("sidecache_connections_rejected_total",
                                         "Client connections refused: over server.max_connections.", {},
                                         {"proxy", "connections_rejected"})),
      requests(r.add_counter("sidecache_requests_read_total", "Requests read from clients.", {},
                             {"proxy", "requests"})),
      intercepted(r.add_counter("sidecache_requests_handled_total",
                                "Requests by who answered them: the cache or the legacy upstream.",
                                {{"by", "cache"}}, {"proxy", "intercepted"})),
      forwarded(r.add_counter("sidecache_requests_handled_total",
                              "Requests by who answered them: the cache or the legacy upstream.",
                              {{"by", "upstream"}}, {"proxy", "forwarded"})) {
    const std::string refused = "Error answers sidecache wrote itself, by status code.";
    rejected_400 = r.add_counter("sidecache_error_responses_total", refused, {{"code", "400"}},
                                 {"proxy", "rejected_400"});
    rejected_408 = r.add_counter("sidecache_error_responses_total", refused, {{"code", "408"}},
                                 {"proxy", "rejected_408"});
    rejected_413 = r.add_counter("sidecache_error_responses_total", refused, {{"code", "413"}},
                                 {"proxy", "rejected_413"});
    rejected_431 = r.add_counter("sidecache_error_responses_total", refused, {{"code", "431"}},
                                 {"proxy", "rejected_431"});
    upstream_502 = r.add_counter("sidecache_error_responses_total", refused, {{"code", "502"}},
                                 {"proxy", "upstream_502"});
    upstream_504 = r.add_counter("sidecache_error_responses_total", refused, {{"code", "504"}},
                                 {"proxy", "upstream_504"});
    write_invalidations =
        r.add_counter("sidecache_invalidations_total", help::invalidations, {{"cause", "write"}},
                      {"proxy", "write_invalidations"});
    for (unsigned c = 1; c <= 5; ++c) {
        passthrough_by_class[c] = r.add_counter(
            "sidecache_requests_total", help::requests,
            {{"route", "passthrough"}, {"code", std::to_string(c) + "xx"}});
    }
    passthrough_duration =
        r.add_histogram("sidecache_request_duration_seconds", help::request_duration, {{"route", "passthrough"}});
}

void declare_upstream_metrics(metrics::registry& r, const upstream::pool& pool) {
    auto read = [&pool](auto field) {
        return [&pool, field] { return static_cast<double>(pool.stats().*field); };
    };
    using s = upstream::pool_stats;
    r.add_counter_fn("sidecache_upstream_connects_total", "Legacy backend connections opened.", {},
                     read(&s::connects), json_path{"upstream", "connects"});
    r.add_counter_fn("sidecache_upstream_connect_failures_total",
                     "Legacy backend connections refused or timed out.", {}, read(&s::connect_failures),
                     json_path{"upstream", "connect_failures"});
    r.add_counter_fn("sidecache_upstream_reuses_total", "Requests sent on a pooled keep-alive connection.",
                     {}, read(&s::reuses), json_path{"upstream", "reuses"});
    r.add_counter_fn("sidecache_upstream_stale_retries_total",
                     "Pooled connections found closed by the legacy backend: retried on a fresh one.", {},
                     read(&s::stale_retries), json_path{"upstream", "stale_retries"});
    r.add_gauge_fn("sidecache_upstream_connections", "Legacy backend connections now, by state.",
                   {{"state", "open"}}, read(&s::open), json_path{"upstream", "open"});
    r.add_gauge_fn("sidecache_upstream_connections", "Legacy backend connections now, by state.",
                   {{"state", "idle"}}, read(&s::idle), json_path{"upstream", "idle"});
}

}  // namespace sidecache::proxy
