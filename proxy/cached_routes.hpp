#pragma once
// The interceptor that serves the configured routes from the cache: a GET or
// HEAD of a cached path with a verified token is answered by cache::service
// under the token's user; anything else (no route, no or bad token, a query
// that cannot be normalized) is declined and so forwarded unchanged. A write
// with a verified token that the upstream accepts evicts its user's entries.

#include "proxy/fills.hpp"
#include "proxy/interceptor.hpp"

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
    cached_routes(cache::service& cache, const auth::verifier& identity, std::vector<cache::filler*> fillers);

    boost::asio::awaitable<std::optional<response_buffers>> handle(request_view request) override;

    // A write with a verified token: evicts every entry of its user (hard).
    std::function<void()> on_write(const boost::beast::http::fields& headers) override;

private:
    cache::service& cache_;
    const auth::verifier& identity_;
    std::vector<cache::filler*> fillers_;
};

}  // namespace sidecache::proxy
