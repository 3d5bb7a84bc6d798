#pragma once
// cache.warmup: at start and after a flush, the answers of the most
// recently active users (db/queries/warmup_users.sql) are filled in the
// background by the midnight refill's passes (cache::midnight_refill::warm:
// bounded concurrency, a fill per user and PostgreSQL route, none for what
// is cached). A trigger while one runs makes it go once more after.
// /readyz may wait for the start's warm-up (ready_timeout).

#include "cache/midnight_refill.hpp"
#include "conf/config.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace sidecache::db {
class pool;
}

namespace sidecache::proxy {

class warmup {
public:
    // Everything must outlive the coroutines it starts on `ex` (the
    // midnight refill's executor): destroy it after their io_context stopped.
    warmup(const conf::warmup_config& config, db::pool& database, cache::midnight_refill& passes,
           boost::asio::any_io_executor ex);

    // Warms up now, or once more after the pass that runs. Any thread.
    void trigger();
    // "" when ready; "warming up" while the start's warm-up runs, for at
    // most ready_timeout after construction (0: always "").
    std::string readiness() const;

    // Its figures (declare_warmup_metrics puts them in /stats and /metrics).
    bool enabled() const { return config_.enabled; }
    bool running() const { return running_.load(); }
    std::uint64_t passes() const { return passes_run_.load(); }
    std::uint64_t users() const { return users_.load(); }    // of the last pass
    std::uint64_t errors() const { return errors_.load(); }  // passes whose users could not be read
    // The entries its passes picked, filled, skipped, failed (in flight, last run).
    const cache::midnight_refill::counters& fills() const { return passes_.warm_stats(); }

private:
    boost::asio::awaitable<void> run();
    boost::asio::awaitable<std::vector<std::string>> recent_users();

    const conf::warmup_config& config_;
    db::pool& database_;
    cache::midnight_refill& passes_;
    boost::asio::any_io_executor ex_;
    std::chrono::steady_clock::time_point created_ = std::chrono::steady_clock::now();
    std::atomic<bool> running_{false};
    std::atomic<bool> again_{false};
    std::atomic<bool> first_done_{false};
    std::atomic<std::uint64_t> passes_run_{0};
    std::atomic<std::uint64_t> users_{0};  // of the last pass
    std::atomic<std::uint64_t> errors_{0};  // passes whose users could not be read
};

}  // namespace sidecache::proxy
