#pragma once
// Whether the legacy backend accepts connections, for GET /readyz: a TCP
// connect to upstream.url every upstream.health_check_interval, on the
// server's first io thread, never per request. A replica whose legacy is
// down cannot answer a miss or a pass-through, so it leaves the rotation.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace sidecache::proxy {

class legacy_health {
public:
    // The last probe's failure ("connect to 127.0.0.1:3000: Connection
    // refused"), "" when it connected; "not probed yet" before the first.
    std::string reason() const {
        std::lock_guard lock(mutex_);
        return reason_;
    }
    void record(std::string reason) {
        ++probes_;
        if (!reason.empty()) ++failures_;
        std::lock_guard lock(mutex_);
        reason_ = std::move(reason);
    }
    std::uint64_t probes() const { return probes_.load(std::memory_order_relaxed); }
    std::uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

private:
    mutable std::mutex mutex_;
    std::string reason_ = "not probed yet";
    std::atomic<std::uint64_t> probes_{0};
    std::atomic<std::uint64_t> failures_{0};
};

}  // namespace sidecache::proxy
