#include "cache/service.hpp"

#include <mutex>
#include <string>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "cache/key.hpp"
#include "cache/policy.hpp"

namespace sidecache::cache {

namespace net = boost::asio;

namespace {

// One coalesced request: a timer on its own executor, cancelled when the
// fill ends.
struct waiter {
    net::steady_timer timer;
    explicit waiter(const net::any_io_executor& ex) : timer(ex) {}
};

using key_buffer = fmt::basic_memory_buffer<char, 256>;

struct transparent_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

constexpr std::size_t flight_shards = 16;

}  // namespace

// The fill of one key in progress, and who waits for it.
struct service::flight {
    std::mutex mutex;
    bool done = false;
    response_bytes response;  // status 0: no answer
    bool stored = false;
    bool failed = false;
    std::chrono::system_clock::time_point computed_at;
    std::vector<std::shared_ptr<waiter>> waiters;
};

struct service::flight_table {
    struct shard {
        std::mutex mutex;
        std::unordered_map<std::string, std::shared_ptr<flight>, transparent_hash, std::equal_to<>> map;
    };
    shard shards[flight_shards];

    shard& shard_for(std::string_view key)
    {
        return shards[std::hash<std::string_view>{}(key) % flight_shards];
    }
};

struct service_access {
    // The key of a request, in a stack buffer for keys of usual length.
    static void build_key(const service& svc, const cache_request& r, key_buffer& out,
                          std::string& query)
    {
        const auto& rc = svc.config_.routes[r.route];
        if (auto q = normalize_query(r.raw_query, rc.query_params))
            query = std::move(*q);
        else
            query = "!" + std::string(r.raw_query);  // unparsable: keyed verbatim
        append_key(out, rc.name, r.user_id, query);
    }

    static net::awaitable<void> run_fill(service& svc, std::size_t route, std::string key,
                                         fill_request request, std::shared_ptr<service::flight> fl,
                                         filler& f)
    {
        const auto& rc = svc.config_.routes[route];
        auto& counters = svc.stats_[route];
        counters.fills.fetch_add(1, std::memory_order_relaxed);
        auto epoch = svc.store_.begin_fill();
        auto computed_at = svc.clock_.system_now();
        std::string user_id = request.user_id;

        fill_result result;
        try {
            result = co_await f.fill(std::move(request));
        } catch (const std::exception&) {
            result = fill_result{};
            result.failed = true;
        }

        bool failed = is_failure(result);
        response_bytes bytes;
        if (result.status != 0)
            bytes = make_response_bytes(key, result.status, result.headers, result.body);
        bool stored = false;
        if (failed) {
            counters.failed_fills.fetch_add(1, std::memory_order_relaxed);
        } else if (is_storable(result)) {
            auto until = fresh_until(result.ttl.value_or(rc.ttl), rc.utc_day_bound, computed_at,
                                     svc.clock_.steady_now(), svc.clock_.system_now());
            stored = svc.store_.put(route, user_id, as_served_from_cache(bytes), result.tags, until,
                                    computed_at, epoch) == put_result::stored;
        }
        if (!failed && !stored)
            counters.not_stored.fetch_add(1, std::memory_order_relaxed);
        svc.store_.end_fill(epoch);

        // Stored first, then the flight leaves the table: a new request sees
        // one or the other.
        {
            auto& s = svc.flights_->shard_for(key);
            std::lock_guard lock(s.mutex);
            auto it = s.map.find(key);
            if (it != s.map.end() && it->second == fl)
                s.map.erase(it);
        }
        std::vector<std::shared_ptr<waiter>> waiters;
        {
            std::lock_guard lock(fl->mutex);
            fl->done = true;
            fl->response = std::move(bytes);
            fl->stored = stored;
            fl->failed = failed;
            fl->computed_at = computed_at;
            waiters.swap(fl->waiters);
        }
        // Each timer is touched only on its own executor.
        for (auto& w : waiters)
            net::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
        svc.fills_in_flight_.fetch_sub(1);
    }

    // The flight of `key`, started (on `ex`) if there is none.
    // Returns it and whether this call started it.
    static std::pair<std::shared_ptr<service::flight>, bool> join_or_start(
        service& svc, const net::any_io_executor& ex, const cache_request& r,
        std::string_view key, const std::string& query, header_list* headers, filler& f,
        bool background)
    {
        auto& s = svc.flights_->shard_for(key);
        std::shared_ptr<service::flight> fl;
        {
            std::lock_guard lock(s.mutex);
            auto it = s.map.find(key);
            if (it != s.map.end())
                return {it->second, false};
            fl = std::make_shared<service::flight>();
            s.map.emplace(std::string(key), fl);
        }
        const auto& rc = svc.config_.routes[r.route];
        fill_request req;
        req.route = rc.name;
        req.path = rc.path;
        req.user_id = std::string(r.user_id);
        req.query = query;
        if (headers)
            req.headers = std::move(*headers);
        req.deadline = svc.clock_.steady_now() + rc.wait_timeout;
        req.background = background;
        svc.fills_in_flight_.fetch_add(1);
        // The fill is its own coroutine: it outlives a client that goes away.
        net::co_spawn(ex, run_fill(svc, r.route, std::string(key), std::move(req), fl, f),
                      [](std::exception_ptr) {});
        return {fl, true};
    }
};

service::service(const conf::cache_config& config, const time_source& clock)
    : config_(config),
      clock_(clock),
      stats_([&] {
          std::vector<std::string> names;
          for (const auto& r : config.routes)
              names.push_back(r.name);
          return names;
      }()),
      store_(config, clock, stats_),
      flights_(std::make_unique<flight_table>()),
      timeout_response_(make_error_response(
          503, "PERFORMANCE_TIMEOUT", "The request could not be answered in time; try again shortly.")),
      overloaded_response_(make_error_response(
          503, "PERFORMANCE_TIMEOUT", "Too many requests are waiting for this data; try again shortly.")),
      fill_error_response_(make_error_response(502, "UPSTREAM_ERROR",
                                               "The data could not be computed; try again shortly."))
{
}

service::~service() = default;

std::optional<std::size_t> service::route_index(std::string_view path) const
{
    for (std::size_t i = 0; i < config_.routes.size(); ++i)
        if (config_.routes[i].path == path)
            return i;
    return std::nullopt;
}

std::optional<cache_answer> service::try_hit(const cache_request& request)
{
    key_buffer key;
    std::string query;
    service_access::build_key(*this, request, key, query);
    auto found = store_.get(request.route, request.user_id, {key.data(), key.size()});
    if (!found || found->state != freshness::fresh)
        return std::nullopt;
    stats_[request.route].hits.fetch_add(1, std::memory_order_relaxed);
    return render(found->response, answer_kind::hit,
                  age_of(found->computed_at, clock_.system_now()), request.keep_alive);
}

net::awaitable<cache_answer> service::serve(cache_request request, header_list client_headers,
                                            filler& fill)
{
    const auto& rc = config_.routes[request.route];
    auto& counters = stats_[request.route];
    key_buffer key_buf;
    std::string query;
    service_access::build_key(*this, request, key_buf, query);
    std::string_view key{key_buf.data(), key_buf.size()};
    auto ex = co_await net::this_coro::executor;

    auto found = store_.get(request.route, request.user_id, key);
    if (found && found->state == freshness::fresh) {
        counters.hits.fetch_add(1, std::memory_order_relaxed);
        co_return render(found->response, answer_kind::hit,
                         age_of(found->computed_at, clock_.system_now()), request.keep_alive);
    }
    if (found && found->state == freshness::stale) {
        // Served now; refreshed once by a background fill (none if one runs).
        counters.stale.fetch_add(1, std::memory_order_relaxed);
        service_access::join_or_start(*this, ex, request, key, query, &client_headers, fill, true);
        co_return render(found->response, answer_kind::stale,
                         age_of(found->computed_at, clock_.system_now()), request.keep_alive);
    }

    // A miss (or an entry only good if the fill fails): wait for the fill.
    counters.misses.fetch_add(1, std::memory_order_relaxed);
    auto [fl, started] =
        service_access::join_or_start(*this, ex, request, key, query, &client_headers, fill, false);
    if (!started)
        counters.coalesced.fetch_add(1, std::memory_order_relaxed);

    auto stale_or = [&](answer_kind kind, const response_bytes& otherwise) {
        if (found) {
            counters.stale.fetch_add(1, std::memory_order_relaxed);
            return render(found->response, kind, age_of(found->computed_at, clock_.system_now()),
                          request.keep_alive);
        }
        return render(otherwise,
                      &otherwise == &timeout_response_ ? answer_kind::timeout : answer_kind::overloaded,
                      std::chrono::seconds{0}, request.keep_alive);
    };

    auto w = std::make_shared<waiter>(ex);
    bool done = false;
    {
        std::lock_guard lock(fl->mutex);
        done = fl->done;
        if (!done) {
            if (fl->waiters.size() >= rc.max_waiters) {
                counters.overloaded.fetch_add(1, std::memory_order_relaxed);
                co_return stale_or(answer_kind::stale_timeout, overloaded_response_);
            }
            w->timer.expires_after(rc.wait_timeout);
            fl->waiters.push_back(w);
        }
    }
    if (!done) {
        co_await w->timer.async_wait(net::as_tuple(net::use_awaitable));
        std::lock_guard lock(fl->mutex);
        done = fl->done;
        if (!done)
            std::erase(fl->waiters, w);
    }
    if (!done) {
        counters.timeouts.fetch_add(1, std::memory_order_relaxed);
        co_return stale_or(answer_kind::stale_timeout, timeout_response_);
    }

    // The fill ended: fl's outcome no longer changes.
    if (fl->failed && found) {
        counters.stale.fetch_add(1, std::memory_order_relaxed);
        co_return render(found->response, answer_kind::stale_if_error,
                         age_of(found->computed_at, clock_.system_now()), request.keep_alive);
    }
    if (fl->response.status == 0)
        co_return render(fill_error_response_, answer_kind::fill_error, std::chrono::seconds{0},
                         request.keep_alive);
    auto kind = !started ? answer_kind::collapsed
                         : (fl->stored ? answer_kind::miss_stored : answer_kind::miss);
    co_return render(fl->response, kind, age_of(fl->computed_at, clock_.system_now()),
                     request.keep_alive);
}

std::size_t service::invalidate(std::string_view tag, invalidation mode)
{
    return store_.invalidate(tag, mode);
}

boost::json::object service::stats() const
{
    boost::json::object out;
    out["routes"] = stats_.to_json();
    out["entries"] = store_.entries();
    out["bytes"] = store_.bytes();
    out["max_bytes"] = config_.max_bytes;
    out["shards"] = store_.shard_count();
    out["fills_in_flight"] = fills_in_flight_.load();
    return out;
}

}  // namespace sidecache::cache
