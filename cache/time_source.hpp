#pragma once
// Injected time. The cache reads two clocks: steady time for TTLs and
// deadlines (never jumps), system time for Age, UTC midnight and JWT exp.
// Tests drive a manual_time_source; production uses real_time().

#include <atomic>
#include <chrono>
#include <cstdint>

namespace sidecache::cache {

class time_source {
public:
    virtual ~time_source() = default;
    virtual std::chrono::steady_clock::time_point steady_now() const = 0;
    virtual std::chrono::system_clock::time_point system_now() const = 0;
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

    // Moves both clocks forward.
    void advance(std::chrono::nanoseconds d);
    // Sets the wall clock only (steady time does not jump).
    void set_system(std::chrono::system_clock::time_point t);

private:
    std::atomic<std::int64_t> steady_ns_;
    std::atomic<std::int64_t> system_ns_;
};

}  // namespace sidecache::cache
