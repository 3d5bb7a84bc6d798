#pragma once
// A circuit breaker for one external host. Pure state machine: every call
// takes the current time, so tests drive it with a manual clock.
//
//   closed --(N consecutive failures, or failure rate >= R over the window
//             with at least min_requests)--> open
//   open --(cool_down elapsed; the next admit() is the one probe)--> half_open
//   half_open --(probe succeeds)--> closed, --(probe fails)--> open
//
// While open, and while the probe is in flight, admit() rejects: no call is made.
// Not thread-safe: the owner serialises calls (client holds a mutex).

#include "conf/config.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace sidecache::external {

class circuit_breaker {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;

    enum class state { closed, open, half_open };

    enum class admission {
        allowed,   // closed: go ahead
        probe,     // half-open: go ahead, you are the one probe; report with probe = true
        rejected,  // open (or a probe is in flight): make no call
    };

    explicit circuit_breaker(conf::breaker_config config);

    admission admit(time_point now);

    // New thresholds (a reload); the state stays. A new window restarts its counts.
    void reconfigure(const conf::breaker_config& next);

    // Report the end of an admitted call. `probe` is true for the call that
    // admit() returned admission::probe for. Late reports of calls admitted
    // before the breaker opened do not move it out of open.
    void on_success(time_point now, bool probe = false);
    void on_failure(time_point now, bool probe = false);

    // The state as admit() would see it, without taking the probe.
    state current(time_point now) const;
    unsigned consecutive_failures() const { return consecutive_failures_; }
    std::uint64_t times_opened() const { return times_opened_; }

private:
    static constexpr std::size_t buckets = 10;
    struct bucket {
        std::int64_t index = -1;  // which width-long slice of time it counts
        unsigned successes = 0;
        unsigned failures = 0;
    };

    void record(time_point now, bool failure);
    void open(time_point now);
    void close();

    conf::breaker_config config_;
    conf::duration bucket_width_;
    state state_ = state::closed;
    bool probe_in_flight_ = false;
    time_point opened_at_{};
    unsigned consecutive_failures_ = 0;
    std::uint64_t times_opened_ = 0;
    std::array<bucket, buckets> window_{};
};

std::string_view to_string(circuit_breaker::state s);

}  // namespace sidecache::external
