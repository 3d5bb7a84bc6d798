#pragma once
// The fill seam: what the cache calls on a miss or a refresh. The upstream
// fill, the PostgreSQL fill and the agents enrichment implement `filler`.

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sidecache::cache {

using header_list = std::vector<std::pair<std::string, std::string>>;

struct fill_request {
    std::string route;                               // route name, "overview"
    std::string path;                                // route path, "/api/dashboard/overview"
    std::string user_id;                             // verified `sub`
    std::string query;                               // normalized query (only the parameters in the key)
    header_list headers;                             // the first requester's identity and tracing headers
    std::chrono::steady_clock::time_point deadline;  // answer by then (advisory)
    bool background = false;                         // a stale-while-revalidate refresh: nobody waits
    // A refill ahead of the readers (cache/midnight_refill.hpp): no client,
    // so no headers; a filler that needs the client's (the legacy's) fails.
    bool ahead = false;
};

struct fill_result {
    unsigned status = 0;  // 0 with failed: no answer at all (502 to waiters)
    header_list headers;  // response headers to store (hop-by-hop ones are dropped)
    std::string body;
    std::vector<std::string> tags;                 // extra tags, e.g. "agent:<id>"
    std::optional<std::chrono::milliseconds> ttl;  // overrides the route ttl (degraded)
    bool failed = false;                           // the fill failed: stale-if-error applies, never stored
};

class filler {
public:
    virtual ~filler() = default;
    // Must not throw for expected failures (return failed = true); an
    // exception is treated as a failed fill.
    virtual boost::asio::awaitable<fill_result> fill(fill_request request) = 0;
};

}  // namespace sidecache::cache
