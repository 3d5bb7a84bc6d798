#include "proxy/cached_routes.hpp"

#include "auth/verifier.hpp"
#include "cache/service.hpp"
#include "proxy/metric_help.hpp"

#include <string>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/fields.hpp>

#include <string_view>

namespace sidecache::proxy {

namespace net = boost::asio;
namespace http = boost::beast::http;

namespace {

// HTTP/1.1 keeps the connection unless the client said close; HTTP/1.0
// closes it (the session closes 1.0 clients after the write anyway).
bool wants_keep_alive(const request_view& request) {
    if (request.version < 11) return false;
    const auto connection = request.headers[http::field::connection];
    return connection.find("close") == std::string_view::npos;
}

// The client's headers a fill sends to the legacy. A fill's answer goes to
// every request coalesced onto it and into the cache, so it must not depend
// on one client's conditional, range, content-negotiation or cookie headers
// (If-None-Match would get a 304 with no body for all of them, Range a 206,
// Accept-Encoding a body others cannot read): only identity and tracing.
bool forwarded_to_fill(std::string_view name) {
    using boost::beast::iequals;
    for (std::string_view allowed : {"authorization", "user-agent", "x-request-id", "x-forwarded-for",
                                     "x-forwarded-proto", "x-real-ip", "traceparent", "tracestate"})
        if (iequals(name, allowed)) return true;
    return false;
}

response_buffers to_response(cache::cache_answer answer, bool head,
                             std::shared_ptr<const auth::verified_user> user) {
    // render() writes head, per-response fields, body: a HEAD answer is the
    // same without the body (Content-Length still says what a GET would get).
    if (head && answer.buffers.size() > 2) answer.buffers.resize(2);
    std::uint64_t body_bytes = 0;
    for (std::size_t i = 2; i < answer.buffers.size(); ++i) body_bytes += answer.buffers[i].size();
    response_buffers out;
    out.buffers = std::move(answer.buffers);
    out.storage = std::move(answer.owner);
    out.keep_alive = answer.keep_alive;
    out.status = answer.status;
    out.body_bytes = body_bytes;
    out.cache_result = cache::to_string(answer.kind);
    out.user = std::move(user);
    return out;
}

}  // namespace

cached_routes::cached_routes(cache::service& cache, const auth::verifier& identity,
                             std::vector<cache::filler*> fillers, metrics::registry& metrics)
    : cache_(cache), identity_(identity), fillers_(std::move(fillers)), metrics_(fillers_.size()) {
    for (std::size_t i = 0; i < metrics_.size(); ++i) {
        const auto& name = cache_.route(i).name;
        auto& m = metrics_[i];
        for (unsigned c = 1; c <= 5; ++c) {
            m.by_class[c] = metrics.add_counter("sidecache_requests_total", help::requests,
                                                {{"route", name}, {"code", std::to_string(c) + "xx"}});
        }
        m.duration = metrics.add_histogram("sidecache_request_duration_seconds", help::request_duration,
                                           {{"route", name}});
        m.bypass = metrics.add_counter("sidecache_cache_results_total", help::cache_results,
                                       {{"route", name}, {"result", "bypass"}}, {"cache", "routes", name, "bypass"});
    }
}

void cached_routes::count(std::size_t route, unsigned status, std::chrono::steady_clock::time_point started) const {
    auto& m = metrics_[route];
    unsigned status_class = status / 100;
    if (status_class < 1 || status_class > 5) status_class = 5;
    m.by_class[status_class].inc();
    m.duration.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

net::awaitable<std::optional<response_buffers>> cached_routes::handle(request_view request) {
    const auto question = request.target.find('?');
    const auto path = request.target.substr(0, question);
    const auto route = cache_.route_index(path);
    if (!route) co_return std::nullopt;
    const auto started = std::chrono::steady_clock::now();

    const auto authorization = request.headers[http::field::authorization];
    auto user = identity_.verify(authorization);
    // Not verified: never served from nor stored in the cache; the legacy
    // answers it (401/403) exactly as it does without sidecache.
    if (!user) {
        metrics_[*route].bypass.inc();
        co_return std::nullopt;
    }

    cache::cache_request key;
    key.route = *route;
    key.user_id = (*user)->user_id;
    key.raw_query =
        question == std::string_view::npos ? std::string_view{} : request.target.substr(question + 1);
    key.keep_alive = request.keep_alive && wants_keep_alive(request);
    const bool head = request.method == http::verb::head;

    if (auto hit = cache_.try_hit(key)) {
        count(*route, hit->status, started);
        co_return to_response(std::move(*hit), head, std::move(*user));
    }

    cache::header_list client_headers;
    for (const auto& field : request.headers)
        if (forwarded_to_fill(field.name_string()))
            client_headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    auto answer = co_await cache_.serve(key, std::move(client_headers), *fillers_[*route]);
    count(*route, answer.status, started);
    auto out = to_response(std::move(answer), head, std::move(*user));
    out.fill_wait = std::chrono::steady_clock::now() - started;
    co_return out;
}

std::function<void()> cached_routes::on_write(const http::fields& headers) {
    auto user = identity_.verify(headers[http::field::authorization]);
    if (!user) return {};
    return [&cache = cache_, tag = "user:" + (*user)->user_id] {
        cache.invalidate(tag, cache::invalidation::hard);
    };
}

}  // namespace sidecache::proxy
