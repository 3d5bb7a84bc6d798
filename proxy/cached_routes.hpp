#pragma once
// The interceptor that serves the configured routes from the cache: a GET or
// HEAD of a cached path with a verified token is answered by cache::service
// under the token's user; anything else (no route, no or bad token, a query
// that cannot be normalized) is declined and so forwarded unchanged. A write
// with a verified token that the upstream accepts evicts its user's entries.

#include "proxy/fills.hpp"
#include "proxy/interceptor.hpp"
#include "metrics/registry.hpp"

#include <array>
#include <chrono>
#include <memory>
#include <vector>

namespace sidecache::auth {
class verifier;
}  // namespace sidecache::auth

namespace sidecache::cache {
class service;
}  // namespace sidecache::cache

namespace sidecache::proxy {

class cached_routes final : public interceptor {
public:
    // One filler per route, in the order of cache.routes. Everything must
    // outlive the interceptor and every fill it started.
    // Its series (requests, times and bypasses per route) are declared in `metrics`.
    cached_routes(cache::service& cache, const auth::verifier& identity, std::vector<cache::filler*> fillers,
                  metrics::registry& metrics);

    boost::asio::awaitable<std::optional<response_buffers>> handle(request_view request) override;

    // A write with a verified token: evicts every entry of its user (hard).
    std::function<void()> on_write(const boost::beast::http::fields& headers) override;

private:
    cache::service& cache_;
    const auth::verifier& identity_;
    std::vector<cache::filler*> fillers_;

    // Handles resolved at start-up, by route index: a request costs no look-up.
    struct route_metrics {
        std::array<metrics::counter, 6> by_class;  // index: status / 100, 1-5
        metrics::histogram duration;
        metrics::counter bypass;  // token not verified: forwarded, neither served nor stored
    };
    std::vector<route_metrics> metrics_;

    void count(std::size_t route, unsigned status, std::chrono::steady_clock::time_point started) const;
};

}  // namespace sidecache::proxy
