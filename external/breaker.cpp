#include "external/breaker.hpp"

#include <algorithm>

namespace sidecache::external {

circuit_breaker::circuit_breaker(conf::breaker_config config)
    : config_(config),
      bucket_width_(std::max(conf::duration{1}, config.window / static_cast<long>(buckets))) {}

circuit_breaker::admission circuit_breaker::admit(time_point now) {
    switch (state_) {
    case state::closed:
        return admission::allowed;
    case state::open:
        if (now - opened_at_ < config_.cool_down) return admission::rejected;
        state_ = state::half_open;
        probe_in_flight_ = true;
        return admission::probe;
    case state::half_open:
        if (probe_in_flight_) return admission::rejected;
        probe_in_flight_ = true;
        return admission::probe;
    }
    return admission::rejected;
}

void circuit_breaker::reconfigure(const conf::breaker_config& next) {
    if (next.window != config_.window) {
        bucket_width_ = std::max(conf::duration{1}, next.window / static_cast<long>(buckets));
        window_ = {};
    }
    config_ = next;
}

void circuit_breaker::on_success(time_point now, bool probe) {
    if (probe) {
        if (state_ == state::half_open) close();
        return;
    }
    if (state_ != state::closed) return;
    consecutive_failures_ = 0;
    record(now, false);
}

void circuit_breaker::on_failure(time_point now, bool probe) {
    if (probe) {
        if (state_ == state::half_open) open(now);
        return;
    }
    if (state_ != state::closed) return;
    ++consecutive_failures_;
    record(now, true);
    if (config_.consecutive_failures > 0 && consecutive_failures_ >= config_.consecutive_failures) {
        open(now);
        return;
    }
    // The failure rate over the buckets still inside the window.
    const auto current = std::chrono::duration_cast<conf::duration>(now.time_since_epoch()) / bucket_width_;
    unsigned total = 0, failures = 0;
    for (const auto& b : window_) {
        if (b.index >= 0 && current - b.index < static_cast<std::int64_t>(buckets)) {
            total += b.successes + b.failures;
            failures += b.failures;
        }
    }
    if (total > 0 && total >= config_.min_requests &&
        static_cast<double>(failures) >= config_.failure_rate * static_cast<double>(total)) {
        open(now);
    }
}

circuit_breaker::state circuit_breaker::current(time_point now) const {
    if (state_ == state::open && now - opened_at_ >= config_.cool_down) return state::half_open;
    return state_;
}

void circuit_breaker::record(time_point now, bool failure) {
    const std::int64_t index =
        std::chrono::duration_cast<conf::duration>(now.time_since_epoch()) / bucket_width_;
    auto& b = window_[static_cast<std::size_t>(index) % buckets];
    if (b.index != index) b = bucket{index, 0, 0};
    (failure ? b.failures : b.successes) += 1;
}

void circuit_breaker::open(time_point now) {
    state_ = state::open;
    opened_at_ = now;
    probe_in_flight_ = false;
    ++times_opened_;
}

void circuit_breaker::close() {
    state_ = state::closed;
    probe_in_flight_ = false;
    consecutive_failures_ = 0;
    window_ = {};
}

std::string_view to_string(circuit_breaker::state s) {
    switch (s) {
    case circuit_breaker::state::closed:
        return "closed";
    case circuit_breaker::state::open:
        return "open";
    case circuit_breaker::state::half_open:
        return "half_open";
    }
    return "unknown";
}

}  // namespace sidecache::external
