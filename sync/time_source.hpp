#pragma once
// Injected time. The cache reads two clocks: steady time for TTLs and
// deadlines (never jumps), system time for Age, UTC midnight and JWT exp.
// Tests drive a manual_time_source; production uses real_time().

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace sidecache::sync {

class time_source {
public:
    virtual ~time_source() = default;
    virtual std::chrono::steady_clock::time_point steady_now() const = 0;
    virtual std::chrono::system_clock::time_point system_now() const = 0;

    // For a clock that only moves when told to: calls `due` once steady_now()
    // reaches `deadline` (on the thread that moves it, or at once if it has)
    // and returns true. The real clock returns false: wait on a real timer
    // at `deadline` (sync::waiter_queue does either).
    virtual bool call_at(std::chrono::steady_clock::time_point deadline, std::function<void()> due) const;
};

// The process-wide real clocks.
const time_source& real_time();

// A clock that only moves when told to. Thread-safe.
class manual_time_source final : public time_source {
public:
    // Starts at 2026-11-28T09:00:00Z (system) and an arbitrary steady epoch.
    manual_time_source();
    explicit manual_time_source(std::chrono::system_clock::time_point system_start);

    std::chrono::steady_clock::time_point steady_now() const override;
    std::chrono::system_clock::time_point system_now() const override;
    bool call_at(std::chrono::steady_clock::time_point deadline, std::function<void()> due) const override;

    // Moves both clocks forward, then calls the alarms now due.
    void advance(std::chrono::nanoseconds d);
    // Sets the wall clock only (steady time does not jump).
    void set_system(std::chrono::system_clock::time_point t);

private:
    std::atomic<std::int64_t> steady_ns_;
    std::atomic<std::int64_t> system_ns_;
    mutable std::mutex alarms_mutex_;
    mutable std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> alarms_;
};

}  // namespace sidecache::sync
