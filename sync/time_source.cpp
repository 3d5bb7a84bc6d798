#include "sync/time_source.hpp"

#include <vector>

namespace sidecache::sync {

namespace {

class real_time_source final : public time_source {
public:
    std::chrono::steady_clock::time_point steady_now() const override {
        return std::chrono::steady_clock::now();
    }
    std::chrono::system_clock::time_point system_now() const override {
        return std::chrono::system_clock::now();
    }
};

std::int64_t to_ns(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

bool time_source::call_at(std::chrono::steady_clock::time_point, std::function<void()>) const {
    return false;
}

const time_source& real_time() {
    static const real_time_source instance;
    return instance;
}

manual_time_source::manual_time_source()
    : manual_time_source(std::chrono::sys_days{std::chrono::year{2026} / 11 / 28} + std::chrono::hours{9}) {}

manual_time_source::manual_time_source(std::chrono::system_clock::time_point system_start)
    : steady_ns_(std::int64_t{1'000'000'000} * 1000), system_ns_(to_ns(system_start)) {}

std::chrono::steady_clock::time_point manual_time_source::steady_now() const {
    return std::chrono::steady_clock::time_point{
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::nanoseconds{steady_ns_.load()})};
}

std::chrono::system_clock::time_point manual_time_source::system_now() const {
    return std::chrono::system_clock::time_point{
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds{system_ns_.load()})};
}

bool manual_time_source::call_at(std::chrono::steady_clock::time_point deadline,
                                 std::function<void()> due) const {
    {
        std::lock_guard lock(alarms_mutex_);
        if (deadline > steady_now()) {
            alarms_.emplace(deadline, std::move(due));
            return true;
        }
    }
    due();
    return true;
}

void manual_time_source::advance(std::chrono::nanoseconds d) {
    steady_ns_ += d.count();
    system_ns_ += d.count();
    // Called outside the lock: an alarm may set another.
    std::vector<std::function<void()>> due;
    {
        std::lock_guard lock(alarms_mutex_);
        auto end = alarms_.upper_bound(steady_now());
        for (auto it = alarms_.begin(); it != end; ++it) due.push_back(std::move(it->second));
        alarms_.erase(alarms_.begin(), end);
    }
    for (auto& f : due) f();
}

void manual_time_source::set_system(std::chrono::system_clock::time_point t) {
    system_ns_ = to_ns(t);
}

}  // namespace sidecache::sync
