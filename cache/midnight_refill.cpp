#include "cache/midnight_refill.hpp"

#include "cache/policy.hpp"
#include "cache/service.hpp"
#include "log/logger.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>

namespace sidecache::cache {

namespace net = boost::asio;
using steady = std::chrono::steady_clock;

// One pass's shared state: run() and its workers hold it.
struct midnight_refill::pass {
    // A warm-up pass: each entry's key is a user id, filled if absent
    // (service::fill_ahead); else entries computed before `midnight` refilled.
    bool warm = false;
    counters* counts = nullptr;
    conf::duration spread{0};
    std::vector<recent_entry> picked;
    std::size_t next = 0;                       // the next entry a worker takes
    std::size_t running = 0;                    // workers not ended
    steady::time_point start;                   // the midnight, in steady time
    std::chrono::system_clock::time_point midnight;
};

midnight_refill::midnight_refill(service& svc, const conf::cache_config& config, const sync::time_source& clock,
                                 std::vector<filler*> fillers)
    : svc_(svc),
      config_(config.midnight_refill),
      clock_(clock),
      fillers_(std::move(fillers)),
      sleeps_(clock),
      ended_(clock) {
    for (std::size_t i = 0; i < config.routes.size(); ++i) {
        const bool postgres =
            config.routes[i].fill == conf::fill_kind::postgres && i < fillers_.size() && fillers_[i] != nullptr;
        routes_.push_back(config.routes[i].utc_day_bound && postgres);
        warm_routes_.push_back(postgres);
    }
}

void midnight_refill::stop() {
    sleeps_.shutdown();
    ended_.shutdown();
}

void midnight_refill::start(const net::any_io_executor& ex) {
    if (!config_.enabled) return;
    net::co_spawn(ex, schedule(), [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            log::error("cache", "the midnight refill stopped", {{"error", x.what()}});
        }
    });
}

net::awaitable<void> midnight_refill::schedule() {
    for (;;) {
        const auto midnight = next_utc_midnight(clock_.system_now());
        // Slept by the steady clock, checked by the wall clock (which may
        // have been set meanwhile): until the wall clock says midnight.
        while (clock_.system_now() < midnight) {
            auto left = std::chrono::duration_cast<steady::duration>(midnight - clock_.system_now());
            co_await sleeps_.wait(clock_.steady_now() + std::max(left, steady::duration{1}));
        }
        co_await run(midnight);
    }
}

net::awaitable<void> midnight_refill::run(std::chrono::system_clock::time_point midnight) {
    auto p = std::make_shared<pass>();
    p->counts = &counters_;
    p->spread = config_.spread;
    p->midnight = midnight;
    // The midnight in steady time, for the reads before it and the spread after.
    p->start = clock_.steady_now() - std::chrono::duration_cast<steady::duration>(clock_.system_now() - midnight);
    p->picked = svc_.entries().recently_read(routes_, p->start - config_.recent, midnight, config_.max_entries);
    co_await run_pass(std::move(p), config_.concurrency);
}

net::awaitable<void> midnight_refill::warm(std::vector<std::string> users, std::size_t concurrency) {
    auto p = std::make_shared<pass>();
    p->warm = true;
    p->counts = &warm_counters_;
    p->start = clock_.steady_now();
    // User by user: the most recently active are warm first.
    for (auto& user : users)
        for (std::size_t r = 0; r < warm_routes_.size(); ++r)
            if (warm_routes_[r]) p->picked.push_back(recent_entry{user, r, 0});
    co_await run_pass(std::move(p), concurrency);
}

net::awaitable<void> midnight_refill::run_pass(std::shared_ptr<pass> p, std::size_t concurrency) {
    const auto began = clock_.steady_now();
    auto& counts = *p->counts;
    counts.selected.fetch_add(p->picked.size(), std::memory_order_relaxed);

    auto ex = co_await net::this_coro::executor;
    // A worker may run (and end) inside co_spawn: count them all first.
    const auto workers = std::min(concurrency, p->picked.size());
    p->running = workers;
    for (std::size_t i = 0; i < workers; ++i)
        net::co_spawn(ex, worker(p), [](std::exception_ptr) {});
    // Workers run on this executor too: none ends between the check and the wait.
    while (p->running > 0) co_await ended_.wait(steady::time_point::max());

    counts.last_run_ms.store(
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_.steady_now() - began).count(),
        std::memory_order_relaxed);
    counts.runs.fetch_add(1, std::memory_order_relaxed);
}

net::awaitable<void> midnight_refill::worker(std::shared_ptr<pass> p) {
    const auto n = p->picked.size();
    try {
        while (p->next < n) {
            const auto i = p->next++;
            // Entry i starts no earlier than i/n of the spread after midnight.
            auto at = p->start + std::chrono::duration_cast<steady::duration>(p->spread * i / n);
            if (at > clock_.steady_now()) co_await sleeps_.wait(at);
            co_await refill(*p, p->picked[i]);
        }
    } catch (const std::exception&) {
        // Counted as it happened; the pass goes on with the other workers.
    }
    // Not on a frame destroyed with its io_context: nobody waits then.
    --p->running;
    ended_.wake_all();
}

net::awaitable<void> midnight_refill::refill(pass& p, recent_entry& entry) {
    auto& counts = *p.counts;
    auto running = counts.in_flight.fetch_add(1, std::memory_order_relaxed) + 1;
    auto most = counts.max_in_flight.load(std::memory_order_relaxed);
    while (running > most && !counts.max_in_flight.compare_exchange_weak(most, running)) {
    }
    auto result = refill_ahead_result::failed;
    try {
        auto& fill = *fillers_[entry.route];
        if (p.warm) {
            result = co_await svc_.fill_ahead(entry.route, std::move(entry.key), fill);
        } else {
            result = co_await svc_.refill_ahead(entry.route, std::move(entry.key), p.midnight, fill);
        }
    } catch (const std::exception&) {
    }
    counts.in_flight.fetch_sub(1, std::memory_order_relaxed);
    auto& counter = result == refill_ahead_result::refilled  ? counts.refilled
                    : result == refill_ahead_result::skipped ? counts.skipped
                                                             : counts.failed;
    counter.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace sidecache::cache
