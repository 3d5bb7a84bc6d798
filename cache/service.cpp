#include "cache/service.hpp"

#include "cache/key.hpp"
#include "cache/policy.hpp"
#include "log/logger.hpp"
#include "sync/single_flight.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

namespace sidecache::cache {

namespace net = boost::asio;

namespace {

using key_buffer = fmt::basic_memory_buffer<char, 256>;

// What a fill came to, as its waiters see it.
struct fill_outcome {
    response_bytes response;  // status 0: no answer
    bool stored = false;
    bool failed = false;
    std::chrono::system_clock::time_point computed_at;
    // A refill ahead of the readers that failed: it had no client's headers
    // (for the legacy), so its waiters fill again with theirs.
    bool needs_client = false;
    bool from_l2 = false;  // the second level's answer, not a fill's
};

using fill_flights = sync::single_flight<fill_outcome>;

// Undoes a step of a fill when the fill ends, however it ends.
template <class F>
struct on_exit {
    F f;
    ~on_exit() { f(); }
};
template <class F>
on_exit(F) -> on_exit<F>;

// Whether the fill of `key` (route '\n' user '\n' query, cache/key.hpp)
// answers for `tag`. "user:<id>" and "route:<name>" are read from the key;
// any other tag (e.g. "agent:<id>") is known only once a fill has ended,
// so it covers every fill in flight.
bool key_carries(std::string_view key, std::string_view tag) {
    auto route_end = key.find('\n');
    auto user_end = key.find('\n', route_end + 1);
    if (route_end == std::string_view::npos || user_end == std::string_view::npos) return true;
    constexpr std::string_view user_prefix = "user:", route_prefix = "route:";
    if (tag.starts_with(user_prefix))
        return key.substr(route_end + 1, user_end - route_end - 1) == tag.substr(user_prefix.size());
    if (tag.starts_with(route_prefix)) return key.substr(0, route_end) == tag.substr(route_prefix.size());
    return true;
}

}  // namespace

struct service::flight_table : fill_flights {
    using fill_flights::fill_flights;
};

struct service_access {
    // The key of a request, in a stack buffer for keys of usual length.
    static void build_key(const service& svc, const cache_request& r, key_buffer& out, std::string& query) {
        const auto& rc = svc.config().routes[r.route];
        query = key_query(r.raw_query, rc.query_params);
        append_key(out, rc.name, r.user_id, query);
    }

    // The filler's answer; an exception counts as a failed fill.
    static net::awaitable<fill_result> call_filler(filler& f, fill_request request) {
        try {
            co_return co_await f.fill(std::move(request));
        } catch (const std::exception&) {
            fill_result failed;
            failed.failed = true;
            co_return failed;
        }
    }

    // Counts the fill's outcome and stores it when it may be.
    static fill_outcome settle(service& svc, std::size_t route, std::string_view key,
                               const std::string& user_id, const fill_result& result,
                               std::chrono::system_clock::time_point computed_at, std::uint64_t epoch) {
        const auto& rc = svc.config().routes[route];
        auto& counters = svc.stats_[route];
        fill_outcome out;
        out.failed = is_failure(result);
        out.computed_at = computed_at;
        if (result.status != 0)
            out.response = make_response_bytes(key, result.status, result.headers, result.body);
        if (out.failed) {
            counters.failed_fills.fetch_add(1, std::memory_order_relaxed);
        } else if (is_storable(result)) {
            // The store's epochs decide, not whether the flight was detached:
            // an invalidation may take a flight out of the table just after
            // its fill began reading (a request that arrived between the
            // store's invalidation and the flights'); that answer is newer
            // than the write and is stored. One that began before is refused.
            auto until = fresh_until(result.ttl.value_or(rc.ttl), rc.utc_day_bound, computed_at,
                                     svc.clock_.steady_now(), svc.clock_.system_now());
            out.stored = svc.store_.put(route, user_id, as_served_from_cache(out.response), result.tags,
                                        until, computed_at, epoch) == put_result::stored;
        }
        if (!out.failed && !out.stored) counters.not_stored.fetch_add(1, std::memory_order_relaxed);
        return out;
    }

    // Holds the key's next fill back, and logs failures at most once per
    // interval (a failing key must not write a line per request).
    static void note_failure(service& svc, std::size_t route, std::string_view key,
                             const response_bytes& answer) {
        const auto& rc = svc.config().routes[route];
        auto now = svc.clock_.steady_now();
        auto wait = svc.backoff_.failed(key, answer, now, rc.failure_backoff, rc.failure_backoff_max);
        std::lock_guard lock(svc.failure_log_mutex_);
        ++svc.failures_unlogged_[route];
        constexpr auto interval = std::chrono::seconds{10};
        if (svc.failure_logged_at_ != std::chrono::steady_clock::time_point{} &&
            now - svc.failure_logged_at_ < interval)
            return;
        std::string counts;
        for (std::size_t i = 0; i < svc.failures_unlogged_.size(); ++i) {
            if (svc.failures_unlogged_[i] == 0) continue;
            counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", svc.failures_unlogged_[i],
                                  svc.config().routes[i].name);
            svc.failures_unlogged_[i] = 0;
        }
        log::warn("cache",
                  "failed fills since the last report; a failing key is filled again after backoff_ms, "
                  "doubling per failure up to backoff_max_ms",
                  {{"failures", counts},
                   {"latest_route", rc.name},
                   {"latest_status", answer.status},  // 0: no answer
                   {"backoff_ms", wait.count()},
                   {"backoff_max_ms", rc.failure_backoff_max.count()}});
        svc.failure_logged_at_ = now;
    }

    // The answer of the fill: the second level's if it has a usable one
    // (then `computed_at` becomes the answer's and l2_read.hit is set), else
    // the filler's. A fill counts only when the filler runs. While freshness
    // is suspended (the invalidation channel unproven) the second level is
    // neither read nor, without a ticket, written: its copy may hide a write
    // this replica was not told of, as its own entries may.
    static net::awaitable<fill_result> answer_of(service& svc, std::size_t route, std::string_view key,
                                                 fill_request request, filler& f, second_level_read& l2_read,
                                                 std::chrono::system_clock::time_point& computed_at) {
        if (svc.l2_ && !svc.freshness_suspended()) {
            l2_read = co_await svc.l2_->read(key, request.user_id);
            auto now = svc.clock_.system_now();
            if (l2_read.hit && l2_read.expires_at > now) {
                computed_at = l2_read.computed_at;
                l2_read.hit->ttl = std::chrono::ceil<std::chrono::milliseconds>(l2_read.expires_at - now);
                co_return std::move(*l2_read.hit);
            }
            l2_read.hit.reset();
        }
        svc.stats_[route].fills.fetch_add(1, std::memory_order_relaxed);
        co_return co_await call_filler(f, std::move(request));
    }

    // Gives the second level an answer the first level stored, fresh as
    // long there. After the flight landed: its waiters do not wait for it.
    static net::awaitable<void> store_second_level(service& svc, std::size_t route, std::string key,
                                                   std::string user_id, second_level_read ticket,
                                                   fill_result result,
                                                   std::chrono::system_clock::time_point computed_at) {
        const auto& rc = svc.config().routes[route];
        auto steady_now = svc.clock_.steady_now();
        auto system_now = svc.clock_.system_now();
        auto until =
            fresh_until(result.ttl.value_or(rc.ttl), rc.utc_day_bound, computed_at, steady_now, system_now);
        auto expires_at =
            system_now + std::chrono::duration_cast<std::chrono::system_clock::duration>(until - steady_now);
        auto remaining = std::chrono::floor<std::chrono::milliseconds>(until - steady_now);
        if (remaining <= std::chrono::milliseconds{0}) co_return;
        co_await svc.l2_->store(std::move(key), std::move(user_id), std::move(ticket), std::move(result),
                                computed_at, expires_at, remaining);
    }

    // One fill, led by `leader`. Whatever throws, the guards below end it in
    // order: the store's fill epoch, then the flight (landed empty if not
    // landed: its waiters are woken and the key can fill again), and last
    // the count of fills in flight (the service may go once it is 0).
    static net::awaitable<void> run_fill(service& svc, std::size_t route, fill_request request,
                                         fill_flights::leader leader_arg, filler& f) {
        on_exit in_flight{[&svc] { svc.fills_in_flight_.fetch_sub(1); }};
        auto leader = std::move(leader_arg);
        auto epoch = svc.store_.begin_fill();
        on_exit fill_epoch{[&svc, epoch] { svc.store_.end_fill(epoch); }};
        auto computed_at = svc.clock_.system_now();
        std::string user_id = request.user_id;
        const bool ahead = request.ahead;

        second_level_read l2_read;
        auto result =
            co_await answer_of(svc, route, leader.key(), std::move(request), f, l2_read, computed_at);
        const bool from_l2 = l2_read.hit.has_value();
        auto outcome = settle(svc, route, leader.key(), user_id, result, computed_at, epoch);
        outcome.from_l2 = from_l2;
        // An answer from the second level was served from a cache already.
        if (from_l2) outcome.response = as_served_from_cache(outcome.response);
        // A refill ahead failing says nothing of a client's fill: no backoff.
        outcome.needs_client = ahead && outcome.failed;
        // The backoff before the flight leaves the table: a new request
        // sees the flight or the backoff, never neither.
        if (outcome.failed && !outcome.needs_client)
            note_failure(svc, route, leader.key(), outcome.response);
        else if (!outcome.failed)
            svc.backoff_.succeeded(leader.key());
        // Only what the first level kept: its epoch refused an answer whose
        // fill an invalidation overtook.
        const bool to_l2 = svc.l2_ && !from_l2 && outcome.stored && l2_read.may_store;
        std::string key(leader.key());
        // Stored first, then the flight leaves the table: a new request
        // sees one or the other.
        leader.land(std::move(outcome));
        if (to_l2)
            co_await store_second_level(svc, route, std::move(key), std::move(user_id), std::move(l2_read),
                                        std::move(result), computed_at);
    }

    // The flight of `key`, its fill started (on `ex`) if there is none.
    // Returns it and whether this call started it.
    static std::pair<std::shared_ptr<fill_flights::flight>, bool> join_or_start(
        service& svc, const net::any_io_executor& ex, const cache_request& r, std::string_view key,
        const std::string& query, header_list* headers, filler& f, bool background, bool ahead = false) {
        auto joined = svc.flights_->join_or_start(key);
        if (!joined.lead) return {std::move(joined.flight), false};
        const auto& rc = svc.config().routes[r.route];
        fill_request req;
        req.route = rc.name;
        req.path = rc.path;
        req.user_id = std::string(r.user_id);
        req.query = query;
        if (headers) req.headers = std::move(*headers);
        // Its own deadline, not its waiters': an answer that comes after they
        // gave up is still stored for the next request.
        req.deadline = svc.clock_.steady_now() + std::max(rc.fill_timeout, rc.wait_timeout);
        req.background = background;
        req.ahead = ahead;
        svc.fills_in_flight_.fetch_add(1);
        // The fill is its own coroutine: it outlives a client that goes away.
        net::co_spawn(ex, run_fill(svc, r.route, std::move(req), std::move(*joined.lead), f),
                      [](std::exception_ptr) {});
        return {std::move(joined.flight), true};
    }
};

service::service(const conf::cache_config& config, const sync::time_source& clock)
    : config_(&config),
      clock_(clock),
      stats_([&] {
          std::vector<std::string> names;
          for (const auto& r : config.routes) names.push_back(r.name);
          return names;
      }()),
      store_(config, clock, stats_),
      flights_(std::make_unique<flight_table>(clock)),
      failures_unlogged_(config.routes.size(), 0),
      timeout_response_(make_error_response(503, "PERFORMANCE_TIMEOUT",
                                            "The request could not be answered in time; try again shortly.")),
      overloaded_response_(make_error_response(
          503, "PERFORMANCE_TIMEOUT", "Too many requests are waiting for this data; try again shortly.")),
      fill_error_response_(
          make_error_response(502, "UPSTREAM_ERROR", "The data could not be computed; try again shortly.")) {}

service::~service() = default;

std::optional<std::size_t> service::route_index(std::string_view path) const {
    for (std::size_t i = 0; i < config().routes.size(); ++i)
        if (config().routes[i].path == path) return i;
    return std::nullopt;
}

std::optional<cache_answer> service::try_hit(const cache_request& request) {
    if (freshness_suspended()) return std::nullopt;  // serve() answers it stale
    key_buffer key;
    std::string query;
    service_access::build_key(*this, request, key, query);
    auto found = store_.get(request.route, request.user_id, {key.data(), key.size()});
    if (!found || found->state != freshness::fresh) return std::nullopt;
    stats_[request.route].hits.fetch_add(1, std::memory_order_relaxed);
    return render(found->response, answer_kind::hit, age_of(found->computed_at, clock_.system_now()),
                  request.keep_alive);
}

net::awaitable<cache_answer> service::serve(cache_request request, header_list client_headers, filler& fill) {
    const auto& rc = config().routes[request.route];
    auto& counters = stats_[request.route];
    key_buffer key_buf;
    std::string query;
    service_access::build_key(*this, request, key_buf, query);
    std::string_view key{key_buf.data(), key_buf.size()};
    auto ex = co_await net::this_coro::executor;

    auto found = store_.get(request.route, request.user_id, key);
    // An unproven invalidation channel: served, but refreshed at once.
    if (found && found->state == freshness::fresh && freshness_suspended()) found->state = freshness::stale;
    if (found && found->state == freshness::fresh) {
        counters.hits.fetch_add(1, std::memory_order_relaxed);
        co_return render(found->response, answer_kind::hit, age_of(found->computed_at, clock_.system_now()),
                         request.keep_alive);
    }
    if (found && found->state == freshness::stale) {
        // Served now; refreshed once by a background fill (none if one runs,
        // or while the key's last fill failed and its backoff runs).
        counters.stale.fetch_add(1, std::memory_order_relaxed);
        if (!backoff_.holding(key, clock_.steady_now()))
            service_access::join_or_start(*this, ex, request, key, query, &client_headers, fill, true);
        co_return render(found->response, answer_kind::stale, age_of(found->computed_at, clock_.system_now()),
                         request.keep_alive);
    }

    // The key's last fill failed and its backoff runs: that failure (or the
    // entry kept for it) at once, no fill.
    if (auto held = backoff_.holding(key, clock_.steady_now())) {
        counters.backed_off.fetch_add(1, std::memory_order_relaxed);
        if (found) {
            counters.stale.fetch_add(1, std::memory_order_relaxed);
            co_return render(found->response, answer_kind::stale_if_error,
                             age_of(found->computed_at, clock_.system_now()), request.keep_alive);
        }
        co_return render(held->status != 0 ? *held : fill_error_response_, answer_kind::backed_off,
                         std::chrono::seconds{0}, request.keep_alive);
    }

    // A miss (or an entry only good if the fill fails): wait for the fill.
    counters.misses.fetch_add(1, std::memory_order_relaxed);
    auto [fl, started] =
        service_access::join_or_start(*this, ex, request, key, query, &client_headers, fill, false);
    if (!started) counters.coalesced.fetch_add(1, std::memory_order_relaxed);

    // After the wait, the entry captured before it is served only if the store
    // still holds it: an invalidation during the wait may have dropped it.
    auto recheck = [&] {
        if (found) found = store_.get(request.route, request.user_id, key);
    };
    // The entry if it is still there (served stale_timeout), else `otherwise`.
    auto stale_or = [&](const response_bytes& otherwise, answer_kind otherwise_kind) {
        recheck();
        if (found) {
            counters.stale.fetch_add(1, std::memory_order_relaxed);
            return render(found->response, answer_kind::stale_timeout,
                          age_of(found->computed_at, clock_.system_now()), request.keep_alive);
        }
        return render(otherwise, otherwise_kind, std::chrono::seconds{0}, request.keep_alive);
    };

    const auto deadline = clock_.steady_now() + rc.wait_timeout;
    auto joined = co_await fl->wait(deadline, rc.max_waiters);
    // A refill ahead of the readers that failed without a client's headers
    // (cache/midnight_refill.hpp): this request fills with its own, once.
    if (joined == sync::join_result::landed && fl->result() && fl->result()->needs_client) {
        auto again = service_access::join_or_start(*this, ex, request, key, query, &client_headers, fill, false);
        fl = std::move(again.first);
        started = again.second;
        joined = co_await fl->wait(deadline, rc.max_waiters);
    }
    if (joined == sync::join_result::overloaded) {
        counters.overloaded.fetch_add(1, std::memory_order_relaxed);
        co_return stale_or(overloaded_response_, answer_kind::overloaded);
    }
    if (joined != sync::join_result::landed) {
        counters.timeouts.fetch_add(1, std::memory_order_relaxed);
        co_return stale_or(timeout_response_, answer_kind::timeout);
    }

    // The fill ended: its outcome no longer changes. None if it threw.
    static const fill_outcome abandoned{{}, false, true, {}};
    const auto& outcome = fl->result() ? *fl->result() : abandoned;
    if (outcome.failed) recheck();
    if (outcome.failed && found) {
        counters.stale.fetch_add(1, std::memory_order_relaxed);
        co_return render(found->response, answer_kind::stale_if_error,
                         age_of(found->computed_at, clock_.system_now()), request.keep_alive);
    }
    if (outcome.response.status == 0)
        co_return render(fill_error_response_, answer_kind::fill_error, std::chrono::seconds{0},
                         request.keep_alive);
    auto kind = outcome.from_l2 ? answer_kind::hit_l2
                : !started      ? answer_kind::collapsed
                                : (outcome.stored ? answer_kind::miss_stored : answer_kind::miss);
    co_return render(outcome.response, kind, age_of(outcome.computed_at, clock_.system_now()),
                     request.keep_alive);
}

net::awaitable<refill_ahead_result> service::refill_ahead(std::size_t route, std::string key,
                                                          std::chrono::system_clock::time_point since,
                                                          filler& fill) {
    // key = route '\n' user '\n' normalized query (cache/key.hpp).
    auto route_end = key.find('\n');
    auto user_end = route_end == std::string::npos ? route_end : key.find('\n', route_end + 1);
    if (user_end == std::string::npos) co_return refill_ahead_result::skipped;
    std::string user_id = key.substr(route_end + 1, user_end - route_end - 1);
    std::string query = key.substr(user_end + 1);
    // Gone (evicted, invalidated), or refilled by a request already.
    auto computed = store_.computed_at(user_id, key);
    if (!computed || *computed >= since) co_return refill_ahead_result::skipped;
    co_return co_await lead_ahead(route, std::move(key), std::move(user_id), std::move(query), fill);
}

net::awaitable<refill_ahead_result> service::fill_ahead(std::size_t route, std::string user_id, filler& fill) {
    // The key a request of the route without a query has.
    cache_request request{route, user_id, {}, true};
    key_buffer key_buf;
    std::string query;
    service_access::build_key(*this, request, key_buf, query);
    std::string key(key_buf.data(), key_buf.size());
    // Cached already (a request came first, or the last warm-up's entry stands).
    if (store_.computed_at(user_id, key)) co_return refill_ahead_result::skipped;
    co_return co_await lead_ahead(route, std::move(key), std::move(user_id), std::move(query), fill);
}

net::awaitable<refill_ahead_result> service::lead_ahead(std::size_t route, std::string key, std::string user_id,
                                                        std::string query, filler& fill) {
    cache_request request{route, user_id, query, true};
    auto ex = co_await net::this_coro::executor;
    auto [fl, started] = service_access::join_or_start(*this, ex, request, key, query, nullptr, fill, true, true);
    // A request's fill runs: it fills the entry, and its waiters wait for it.
    if (!started) co_return refill_ahead_result::skipped;
    const auto& rc = config().routes[route];
    // The fill ends by its own deadline; this bounds the wait all the same.
    auto joined = co_await fl->wait(clock_.steady_now() + std::max(rc.fill_timeout, rc.wait_timeout) +
                                        std::chrono::seconds{1},
                                    SIZE_MAX);
    if (joined == sync::join_result::landed && fl->result() && fl->result()->stored)
        co_return refill_ahead_result::refilled;
    co_return refill_ahead_result::failed;
}

std::size_t service::invalidate(std::string_view tag, invalidation mode) {
    // The second level before all: from here on no fill reads or stores
    // it for the tag, so a fill that begins after the store's invalidation
    // cannot find the copy there that it drops.
    if (l2_) l2_->invalidate(tag);
    return invalidate_first_level(tag, mode);
}

std::size_t service::invalidate_first_level(std::string_view tag, invalidation mode) {
    // The store first (its epoch refuses what the fills in flight would
    // store), then the flights: a request that arrives after this returns
    // starts or joins a fill that began after it.
    auto hit = store_.invalidate(tag, mode);
    flights_->detach_if([&](std::string_view key) { return key_carries(key, tag); });
    // A failure before the write says nothing of a fill after it.
    backoff_.forget_if([&](std::string_view key) { return key_carries(key, tag); });
    return hit;
}

std::size_t service::invalidate_entries(std::string_view tag, invalidation mode) {
    return store_.invalidate(tag, mode);
}

boost::json::object service::stats() const {
    boost::json::object out;
    out["routes"] = stats_.to_json();
    out["entries"] = store_.entries();
    out["bytes"] = store_.bytes();
    out["max_bytes"] = config().max_bytes;
    out["shards"] = store_.shard_count();
    out["fills_in_flight"] = fills_in_flight_.load();
    return out;
}

}  // namespace sidecache::cache
