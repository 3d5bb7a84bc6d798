#include "proxy/fills.hpp"

#include "db/error.hpp"
#include "db/pool.hpp"
#include "external/client.hpp"
#include "upstream/pool.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <algorithm>

namespace sidecache::proxy {

namespace net = boost::asio;
namespace http = boost::beast::http;
using steady = std::chrono::steady_clock;

net::awaitable<cache::fill_result> upstream_fill::fill(cache::fill_request request) {
    // A refill ahead of the readers has no client, so no Authorization for
    // the legacy: failed, and its waiters fill with their own headers.
    if (request.ahead) {
        cache::fill_result failed;
        failed.failed = true;
        co_return failed;
    }
    upstream::request_head head;
    head.method = http::verb::get;
    head.target = request.path;
    if (!request.query.empty()) {
        head.target += '?';
        head.target += request.query;
    }
    for (const auto& [name, value] : request.headers) head.headers.insert(name, value);

    // A background refresh has nobody waiting: it gets the whole response timeout.
    auto deadline = request.deadline;
    if (request.background) deadline = steady::now() + pool_.config().response_timeout;

    cache::fill_result result;
    auto answer = co_await pool_.fetch(std::move(head), deadline);
    if (!answer) {
        result.failed = true;
        co_return result;
    }
    result.status = answer->status;
    for (const auto& field : answer->headers)
        result.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    result.body = std::move(answer->body);
    // A 5xx is the upstream failing: stale-if-error may serve the last good answer.
    result.failed = result.status >= 500;
    co_return result;
}

net::awaitable<cache::fill_result> route_fill::fill(cache::fill_request request) {
    if (route_.fill != conf::fill_kind::postgres || db_ == nullptr) {
        co_return co_await fallback_.fill(std::move(request));
    }
    auto body = co_await db_->query_json(
        route_.query, request.user_id, request.deadline,
        request.background ? db::query_priority::background : db::query_priority::foreground);
    if (!body) {
        ++stats_.fallbacks;
        if (body.error() == db::error::no_such_user) ++stats_.no_user;
        co_return co_await fallback_.fill(std::move(request));
    }
    ++stats_.postgres;

    cache::fill_result result;
    result.status = 200;
    result.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
    result.body = std::move(*body);

    if (route_.enrich_agents && external_ != nullptr) {
        const auto mode =
            request.background ? external::retry_mode::background : external::retry_mode::foreground;
        // The enrichment has its own deadline (external.deadline) inside the
        // waiters' one: unfinished agents degrade rather than fail the answer.
        auto deadline = external_->deadline_for(mode);
        if (!request.background) deadline = std::min(deadline, request.deadline);
        auto enriched = co_await external_->enrich(std::move(result.body), deadline, mode);
        ++stats_.enriched;
        result.body = std::move(enriched.body);
        for (auto& id : enriched.agent_ids) result.tags.push_back("agent:" + id);
        if (enriched.degraded) {
            ++stats_.degraded;
            // Cached briefly; the next request after it refreshes it in the background.
            result.ttl = route_.degraded_ttl;
        }
    }
    co_return result;
}

boost::json::object to_json(const fill_stats& stats) {
    boost::json::object o;
    o["postgres"] = stats.postgres.load();
    o["fallbacks"] = stats.fallbacks.load();
    o["no_user"] = stats.no_user.load();
    o["enriched"] = stats.enriched.load();
    o["degraded"] = stats.degraded.load();
    return o;
}

}  // namespace sidecache::proxy
