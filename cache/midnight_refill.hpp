#pragma once
// Refill ahead of the readers. At 00:00 UTC every answer of a utc_day_bound
// route becomes wrong at once (its windows are UTC days), and no request
// after midnight is answered from it (policy.hpp past_day_end). So right
// after each UTC midnight, the entries of those routes read within
// `recent` before it are refilled in the background through
// cache::service::refill_ahead: the most recently read first, at most
// `max_entries`, at most `concurrency` fills at once, their starts spread
// evenly over `spread`, so the first requests after midnight are hits and
// the database sees a bounded rate of fills. A request for an entry whose
// refill has not run yet does not get yesterday's answer: it waits for its
// fill (its own, or the refill it joins). docs/freshness.md "UTC midnight".
//
// The same passes fill the warm-up (cache.warmup, warm()): the answers of
// given users, not cached yet, with bounded concurrency and no spread.
//
// Time comes from the service's time_source: a manual clock drives the
// schedule in tests.

#include "cache/filler.hpp"
#include "cache/store.hpp"
#include "conf/config.hpp"
#include "sync/time_source.hpp"
#include "sync/waiter_queue.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sidecache::cache {

class service;

class midnight_refill {
public:
    // `svc`, `config`, `clock` and the fillers (one per route, in the order
    // of cache.routes) must outlive the coroutines this starts: destroy it
    // after their io_context stopped. Refilled: the utc_day_bound routes
    // filled from PostgreSQL (a legacy fill needs the client's headers).
    midnight_refill(service& svc, const conf::cache_config& config, const sync::time_source& clock,
                    std::vector<filler*> fillers);

    // Runs the schedule on `ex` (a strand or a single-threaded io_context)
    // until its io_context stops: each UTC midnight, run(midnight). Nothing
    // when midnight_refill.enabled is false.
    void start(const boost::asio::any_io_executor& ex);
    // Ends every wait of the schedule and its passes, and lets go of their
    // timers. Call it once the io_context has stopped and before it is
    // destroyed: a timer must not outlive its io_context (ASan found the
    // queues' last waiters destroyed after it).
    void stop();

    // One pass for the midnight `midnight` (the past one): the entries read
    // within `recent` before it and computed before it, refilled. Completes
    // when every refill has ended.
    boost::asio::awaitable<void> run(std::chrono::system_clock::time_point midnight);

    // A warm-up pass: the answer of each of `users` (the most important
    // first) on every route filled from PostgreSQL, filled unless cached
    // already, at most `concurrency` at once (cache::service::fill_ahead).
    // Completes when every fill has ended. Counted in warm_stats().
    boost::asio::awaitable<void> warm(std::vector<std::string> users, std::size_t concurrency);

    struct counters {
        std::atomic<std::uint64_t> runs{0};      // passes ended
        std::atomic<std::uint64_t> selected{0};  // entries picked (read recently, computed before midnight)
        std::atomic<std::uint64_t> refilled{0};  // refilled and stored
        std::atomic<std::uint64_t> skipped{0};   // gone, refilled already, or a request's fill ran
        std::atomic<std::uint64_t> failed{0};    // the refill failed or was not stored
        std::atomic<std::uint64_t> in_flight{0};      // refills running now
        std::atomic<std::uint64_t> max_in_flight{0};  // the most at once, ever
        std::atomic<std::int64_t> last_run_ms{-1};    // how long the last pass took
    };
    const counters& stats() const { return counters_; }
    bool enabled() const { return config_.enabled; }
    // The warm-up passes' counters: selected is users x routes.
    const counters& warm_stats() const { return warm_counters_; }

private:
    struct pass;
    boost::asio::awaitable<void> schedule();
    // Takes the pass's next entries until none is left.
    boost::asio::awaitable<void> worker(std::shared_ptr<pass> p);
    // One refill, counted.
    boost::asio::awaitable<void> refill(pass& p, recent_entry& entry);
    // Starts the pass's workers and waits for them.
    boost::asio::awaitable<void> run_pass(std::shared_ptr<pass> p, std::size_t concurrency);

    service& svc_;
    const conf::midnight_refill_config& config_;
    const sync::time_source& clock_;
    std::vector<filler*> fillers_;
    std::vector<bool> routes_;       // refilled: utc_day_bound
    std::vector<bool> warm_routes_;  // warmed: filled from PostgreSQL
    counters counters_;
    counters warm_counters_;
    sync::waiter_queue sleeps_;  // timed waits: until midnight, until a refill's start
    sync::waiter_queue ended_;   // a pass waits here for its workers
};

}  // namespace sidecache::cache
