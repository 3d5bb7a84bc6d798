#pragma once
// The configuration in effect, replaced whole by a reload (SIGHUP, POST
// /reload; conf/reload.hpp decides what of a new file is taken). Readers call
// current(): one acquire load, no lock, no allocation, so the hit path may
// read it per request. What it returns stays valid for the live_config's
// lifetime: every version published is kept (a version is a few KiB, and
// only a reload that changes something publishes one: a SIGHUP sent by a
// config manager every minute with the same file adds nothing), so a reader
// holding a reference across a reload reads the old version whole, never a
// torn one.

#include "conf/config.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace sidecache::conf {

class live_config {
public:
    explicit live_config(config initial) { publish(std::move(initial)); }
    live_config(const live_config&) = delete;
    live_config& operator=(const live_config&) = delete;

    const config& current() const noexcept { return *current_.load(std::memory_order_acquire); }

    // Makes `next` current; returns it (valid as long as this object).
    const config& publish(config next) {
        std::lock_guard lock(mutex_);  // publishers only
        versions_.push_back(std::make_unique<const config>(std::move(next)));
        current_.store(versions_.back().get(), std::memory_order_release);
        return *versions_.back();
    }

    // How many versions are kept (the first included).
    std::size_t versions() {
        std::lock_guard lock(mutex_);
        return versions_.size();
    }

private:
    std::mutex mutex_;
    std::vector<std::unique_ptr<const config>> versions_;
    std::atomic<const config*> current_{nullptr};
};

}  // namespace sidecache::conf
