#pragma once
// The help text of the metric families that more than one file of proxy/
// adds series to (a family's help is given once; the registry checks that
// every declaration agrees).

namespace sidecache::proxy::help {

inline constexpr const char* requests = "Requests by route and status class of the answer.";
inline constexpr const char* request_duration =
    "Time to answer a request: for a cached route from its head read to its answer ready, for a "
    "pass-through until the last byte relayed.";
inline constexpr const char* cache_results =
    "Cached routes' requests by how the cache answered them (hit, stale, miss, collapsed, timeout, "
    "overloaded, backed_off; bypass: token not verified, so forwarded).";
inline constexpr const char* invalidations =
    "Invalidations by cause: a verified write answered 2xx (write), a NOTIFY of a user, an agent, "
    "all, or a garbled one (handled as all).";

}  // namespace sidecache::proxy::help
