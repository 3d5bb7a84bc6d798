#pragma once
// The front door of the cache: one call per cacheable request. Fresh hits
// are answered from the store; stale ones are served while one background
// fill refreshes them; misses of one key share one fill (coalescing, a
// sync::single_flight), whose waiters resume on their own executor when it
// ends or their wait_timeout (by the service's clock) passes (then: stale if
// any, else 503). A fill runs to its own deadline (the route's
// fill_timeout), past its waiters', and its answer is stored. A fill that
// fails (or throws) ends its flight with what a failed fill gives, and the
// key's next fill waits out a backoff (fill_backoff): meanwhile its
// requests get the stale-if-error entry, else that failure, at once.
//
// Lifetime: the service and the fillers passed to serve() must outlive every
// fill they started (fills outlive the requests that caused them); destroy
// them after the io_context has stopped, or once fills_in_flight() is 0.

#include "cache/fill_backoff.hpp"
#include "cache/filler.hpp"
#include "cache/response.hpp"
#include "cache/second_level.hpp"
#include "cache/stats.hpp"
#include "cache/store.hpp"
#include "conf/config.hpp"
#include "sync/time_source.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sidecache::cache {

struct cache_request {
    std::size_t route = 0;       // from service::route_index(path)
    std::string_view user_id;    // verified `sub`, never the raw token
    std::string_view raw_query;  // the target's query, without '?'
    bool keep_alive = true;      // what to answer in Connection
};

// What one refill ahead of the readers came to (service::refill_ahead).
enum class refill_ahead_result {
    refilled,  // filled and stored
    skipped,   // the entry is gone, was refilled already, or a request's fill of it runs
    failed,    // the fill failed or its answer was not stored
};

class service {
public:
    // `config` and `clock` must outlive the service.
    service(const conf::cache_config& config, const sync::time_source& clock);
    ~service();
    service(const service&) = delete;
    service& operator=(const service&) = delete;

    // The cached route of an exact path, if any.
    std::optional<std::size_t> route_index(std::string_view path) const;
    const conf::route_config& route(std::size_t index) const { return config().routes[index]; }

    // The routes' settings in effect: one acquire load, so requests read it
    // without a lock. reconfigure() replaces them (a reload: conf/reload.hpp)
    // with `next`, whose routes are the same ones in the same order (only
    // their windows and limits differ) and which outlives the service (a
    // conf::live_config keeps it). Fills and waits in progress keep what
    // they read; the next request reads the new settings.
    const conf::cache_config& config() const noexcept { return *config_.load(std::memory_order_acquire); }
    void reconfigure(const conf::cache_config& next) {
        store_.reconfigure(next);
        config_.store(&next, std::memory_order_release);
    }

    // A second level shared by the fleet (docs/l2.md), read inside each
    // fill's single flight before the filler runs, and given the answers
    // the first level stores; invalidate() reaches it first. Set before the
    // first request; it must outlive every fill. Without it (the default),
    // no call is made.
    void use_second_level(second_level* l2) { l2_ = l2; }

    // The hit path without a coroutine: a fresh entry's answer, else nullopt
    // (then call serve). Counts a hit only when it answers.
    std::optional<cache_answer> try_hit(const cache_request& request);

    // Any request of a cached route. `request`'s views must stay valid until
    // this completes (co_await it at once); `client_headers` go to the fill.
    // The calling coroutine's executor must be a strand or a single-threaded
    // io_context (waiters are woken by posting to it).
    boost::asio::awaitable<cache_answer> serve(cache_request request, header_list client_headers,
                                               filler& fill);

    // Refills the entry of `key` (of `route`) in the background with `fill`
    // unless it is gone or was computed at or after `since`, and waits for
    // that fill to end. A request of the key meanwhile joins it; one that
    // came first leads its own fill, and this joins nothing (skipped). The
    // fill has no client: fill_request::ahead. The executor as for serve().
    // For cache/midnight_refill.hpp.
    boost::asio::awaitable<refill_ahead_result> refill_ahead(std::size_t route, std::string key,
                                                             std::chrono::system_clock::time_point since,
                                                             filler& fill);

    // Fills the entry of `user_id` on `route` (the key of a request without
    // a query) in the background with `fill` unless it is cached already or
    // a request's fill of it runs (skipped), and waits for that fill to end.
    // The fill has no client: fill_request::ahead. For cache/warmup.hpp.
    boost::asio::awaitable<refill_ahead_result> fill_ahead(std::size_t route, std::string user_id, filler& fill);

    // Soft by default: entries carrying `tag` ("user:<id>", "agent:<id>",
    // "route:<name>") turn stale; hard: evicted. Fills in flight that began
    // before for the keys it touches (any key for a tag other than user: or
    // route:) are not stored and leave the flight table: a request arriving
    // after this returns never gets their answer. Returns the entries hit.
    std::size_t invalidate(std::string_view tag, invalidation mode = invalidation::soft);
    // invalidate() without telling the second level: for a caller that made
    // the second level's invalidation itself, first (a starting replica's
    // flush: second_level_cache::invalidate_held).
    std::size_t invalidate_first_level(std::string_view tag, invalidation mode);
    // The same for the entries only: the fills in flight stay joinable, and
    // one is not stored only if its answer carries `tag`. For a tag that the
    // key does not name and whose fills in flight another invalidation sent
    // with it covers: an agent's, whose owner's "user:<id>" comes in the same
    // notification (007_notify_agents.sql). invalidate() would leave every
    // fill in flight of every user unstored, and under steady writes no
    // refill would ever be stored (bench/freshness).
    std::size_t invalidate_entries(std::string_view tag, invalidation mode = invalidation::soft);

    // While suspended, no entry is served as fresh: a fresh one is answered
    // stale with a background refill (stale-while-revalidate), never a hit.
    // For an invalidation channel that is not proven (db/listener.hpp's
    // heartbeat overdue): an entry may hide a write nobody told us of. Any
    // thread; the hit path reads it with one relaxed load.
    void suspend_freshness(bool suspended) {
        freshness_suspended_.store(suspended, std::memory_order_relaxed);
    }
    bool freshness_suspended() const { return freshness_suspended_.load(std::memory_order_relaxed); }

    // Per route counters plus totals, for /stats.
    boost::json::object stats() const;

    std::size_t fills_in_flight() const { return fills_in_flight_.load(); }
    store& entries() { return store_; }
    const store& entries() const { return store_; }
    // The per route counters, for the metrics registry.
    const stats_table& counters() const { return stats_; }

    struct flight_table;

private:
    // Leads the fill of `key` ahead of its readers unless one runs; its outcome.
    boost::asio::awaitable<refill_ahead_result> lead_ahead(std::size_t route, std::string key, std::string user_id,
                                                           std::string query, filler& fill);

    std::atomic<const conf::cache_config*> config_;
    const sync::time_source& clock_;
    second_level* l2_ = nullptr;
    stats_table stats_;
    store store_;
    std::unique_ptr<flight_table> flights_;
    fill_backoff backoff_;
    std::atomic<std::size_t> fills_in_flight_{0};
    std::atomic<bool> freshness_suspended_{false};
    // Failed fills are logged at most once per interval, with their count.
    std::mutex failure_log_mutex_;
    std::chrono::steady_clock::time_point failure_logged_at_{};
    std::vector<std::uint64_t> failures_unlogged_;  // per route
    response_bytes timeout_response_;
    response_bytes overloaded_response_;
    response_bytes fill_error_response_;

    friend struct service_access;
};

}  // namespace sidecache::cache
