#include "proxy/fills.hpp"

#include "db/error.hpp"
#include "db/pool.hpp"
#include "external/client.hpp"
#include "upstream/pool.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/string.hpp>
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
    // A fill asks without conditions, ranges or encodings (cached_routes):
    // a 304, a 206 or an encoded body is the legacy misbehaving, and no
    // answer for the requests waiting on it or for the cache.
    if (answer->status == 304 || answer->status == 206 ||
        answer->headers.count(http::field::content_range) != 0 ||
        (answer->headers.count(http::field::content_encoding) != 0 &&
         !boost::beast::iequals(answer->headers[http::field::content_encoding], "identity"))) {
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

namespace {

double seconds_since(steady::time_point started) {
    return std::chrono::duration<double>(steady::now() - started).count();
}

}  // namespace

net::awaitable<cache::fill_result> route_fill::legacy(cache::fill_request request) {
    const auto started = steady::now();
    auto result = co_await fallback_.fill(std::move(request));
    stats_.legacy_duration.observe(seconds_since(started));
    co_return result;
}

net::awaitable<cache::fill_result> route_fill::fill(cache::fill_request request) {
    // Read once: a reload meanwhile leaves this fill as it began.
    const conf::route_config& route = *route_.load(std::memory_order_acquire);
    if (route.fill != conf::fill_kind::postgres || db_ == nullptr) {
        co_return co_await legacy(std::move(request));
    }
    const auto started = steady::now();
    auto body = co_await db_->query_json(
        route.query, request.user_id, request.deadline,
        request.background ? db::query_priority::background : db::query_priority::foreground);
    stats_.postgres_duration.observe(seconds_since(started));
    if (!body) co_return co_await fall_back(std::move(request), body.error() == db::error::no_such_user);
    stats_.postgres.inc();

    cache::fill_result result;
    result.status = 200;
    result.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
    result.body = std::move(*body);

    if (route.enrich_agents && external_ != nullptr) {
        const auto mode =
            request.background ? external::retry_mode::background : external::retry_mode::foreground;
        // The enrichment has its own deadline (external.deadline) inside the
        // waiters' one: unfinished agents degrade rather than fail the answer.
        auto deadline = external_->deadline_for(mode);
        if (!request.background) deadline = std::min(deadline, request.deadline);
        const auto enrich_started = steady::now();
        auto enriched = co_await external_->enrich(std::move(result.body), deadline, mode);
        stats_.external_duration.observe(seconds_since(enrich_started));
        stats_.enriched.inc();
        result.body = std::move(enriched.body);
        for (auto& id : enriched.agent_ids) result.tags.push_back("agent:" + id);
        if (enriched.degraded) {
            stats_.degraded.inc();
            // Cached briefly; the next request after it refreshes it in the
            // background. Tagged so that the external API's recovery drops it
            // (application.cpp): the answers after it are complete ones.
            result.ttl = route.degraded_ttl;
            result.tags.emplace_back(degraded_tag);
        }
    }
    co_return result;
}

namespace {

// A fallback not tried for this long is tried again whatever the estimate.
constexpr auto legacy_probe_interval = std::chrono::seconds(10);

std::int64_t ms_since_epoch(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

bool route_fill::legacy_in_time(clock::time_point deadline) const {
    const auto expected = legacy_ms_.load(std::memory_order_relaxed);
    const auto now = clock::now();
    if (expected == 0 || deadline - now >= std::chrono::milliseconds(expected)) return true;
    const auto since_tried = ms_since_epoch(now) - legacy_tried_ms_.load(std::memory_order_relaxed);
    return since_tried >= std::chrono::milliseconds(legacy_probe_interval).count();
}

void route_fill::learn_legacy(clock::duration took) {
    const auto ms = std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
    const auto old = legacy_ms_.load(std::memory_order_relaxed);
    // Racing updates may lose one sample; the mean stays a mean.
    legacy_ms_.store(old == 0 ? ms : (3 * old + ms) / 4, std::memory_order_relaxed);
}

net::awaitable<cache::fill_result> route_fill::fall_back(cache::fill_request request, bool no_user) {
    // No active user: the legacy answers its 403 without computing anything,
    // always in time, and says nothing of how long a dashboard takes. A
    // background refill has the whole response timeout, nobody waiting.
    if (!no_user && !request.background && !legacy_in_time(request.deadline)) {
        stats_.fallbacks_skipped.inc();
        cache::fill_result failed;
        failed.failed = true;
        co_return failed;
    }
    stats_.fallbacks.inc();
    if (no_user) {
        stats_.no_user.inc();
        co_return co_await legacy(std::move(request));
    }
    const auto t0 = clock::now();
    const auto deadline = request.deadline;
    legacy_tried_ms_.store(ms_since_epoch(t0), std::memory_order_relaxed);
    auto result = co_await legacy(std::move(request));
    auto took = clock::now() - t0;
    // No answer by the deadline: the legacy takes longer than that, so it
    // is learnt as half as long again (the next, longer try corrects it).
    if (result.failed && result.status == 0 && clock::now() >= deadline) took += took / 2;
    learn_legacy(took);
    co_return result;
}

fill_stats::fill_stats(metrics::registry& r)
    : postgres(r.add_counter("sidecache_fills_postgres_total", "Fill answers computed from PostgreSQL.", {},
                             {"fills", "postgres"})),
      fallbacks(r.add_counter("sidecache_fills_fallback_total",
                              "Fills forwarded to the legacy backend because PostgreSQL could not answer.",
                              {}, {"fills", "fallbacks"})),
      fallbacks_skipped(r.add_counter("sidecache_fills_fallback_skipped_total",
                                      "Fills failed at once: the legacy could not have answered before their deadline.",
                                      {}, {"fills", "fallbacks_skipped"})),
      no_user(r.add_counter("sidecache_fills_no_user_total",
                            "Fallbacks because PostgreSQL found no active user.", {}, {"fills", "no_user"})),
      enriched(r.add_counter("sidecache_fills_enriched_total",
                             "Fill answers completed by the external agent API.", {}, {"fills", "enriched"})),
      degraded(r.add_counter("sidecache_fills_degraded_total",
                             "Enriched answers with some agent stale or unavailable.", {},
                             {"fills", "degraded"})) {
    const std::string help = "Time a fill spent in each source.";
    postgres_duration = r.add_histogram("sidecache_fill_duration_seconds", help, {{"source", "postgres"}});
    legacy_duration = r.add_histogram("sidecache_fill_duration_seconds", help, {{"source", "legacy"}});
    external_duration = r.add_histogram("sidecache_fill_duration_seconds", help, {{"source", "external"}});
}

}  // namespace sidecache::proxy
