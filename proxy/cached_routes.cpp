#include "proxy/cached_routes.hpp"

#include "auth/verifier.hpp"
#include "cache/service.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/fields.hpp>

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
                             std::vector<cache::filler*> fillers)
    : cache_(cache), identity_(identity), fillers_(std::move(fillers)) {}

net::awaitable<std::optional<response_buffers>> cached_routes::handle(request_view request) {
    const auto question = request.target.find('?');
    const auto path = request.target.substr(0, question);
    const auto route = cache_.route_index(path);
    if (!route) co_return std::nullopt;

    const auto authorization = request.headers[http::field::authorization];
    auto user = identity_.verify(authorization);
    // Not verified: never served from nor stored in the cache; the legacy
    // answers it (401/403) exactly as it does without sidecache.
    if (!user) co_return std::nullopt;

    cache::cache_request key;
    key.route = *route;
    key.user_id = (*user)->user_id;
    key.raw_query =
        question == std::string_view::npos ? std::string_view{} : request.target.substr(question + 1);
    key.keep_alive = wants_keep_alive(request);
    const bool head = request.method == http::verb::head;

    if (auto hit = cache_.try_hit(key)) co_return to_response(std::move(*hit), head, std::move(*user));

    cache::header_list client_headers;
    for (const auto& field : request.headers)
        client_headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    const auto started = std::chrono::steady_clock::now();
    auto answer = co_await cache_.serve(key, std::move(client_headers), *fillers_[*route]);
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
