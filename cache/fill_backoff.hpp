#pragma once
// Keys whose last fill failed, and when each may be filled again: after n
// consecutive failures, `initial` * 2^(n-1), at most `max`. So a key that
// cannot be computed (the database and the legacy failing for it, a fill
// past its deadline) costs one fill per backoff, not one per request.
// Thread-safe; time passed in. Empty (the usual case) costs one atomic load.

#include "cache/response.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sidecache::cache {

class fill_backoff {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using duration = std::chrono::milliseconds;

    // At most this many keys are held; past it, failures of new keys are
    // not held back (their fills run as without a backoff).
    explicit fill_backoff(std::size_t max_keys = 100'000) : max_keys_(max_keys) {}

    // While `key` waits out its backoff at `now`: the failed fill's answer
    // (status 0 if it had none). nullopt: a fill may start.
    std::optional<response_bytes> holding(std::string_view key, time_point now) const;

    // A fill of `key` failed at `now` with `answer`; returns the wait before
    // its next fill (0 when `initial` is 0: no backoff).
    duration failed(std::string_view key, const response_bytes& answer, time_point now, duration initial,
                    duration max);
    // A fill of `key` succeeded: no backoff any more.
    void succeeded(std::string_view key);
    // Forgets the keys `pred` selects: an invalidation changed their data,
    // so their last failure says nothing of the next fill.
    void forget_if(const std::function<bool(std::string_view)>& pred);

    std::size_t size() const { return count_.load(std::memory_order_acquire); }

private:
    struct state {
        unsigned failures = 0;
        time_point retry_at;
        response_bytes answer;
    };
    void prune(time_point now);  // mutex_ held

    const std::size_t max_keys_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, state> keys_;
    std::atomic<std::size_t> count_{0};
};

}  // namespace sidecache::cache
