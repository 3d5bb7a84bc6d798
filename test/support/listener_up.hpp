#pragma once
// Waits for the application's NOTIFY listener to be LISTENing. Its first
// LISTEN evicts the whole cache (changes before it were not seen), so a test
// that counts hits and misses starts after it.

#include "db/listener.hpp"
#include "db/pool.hpp"
#include "proxy/application.hpp"

#include <chrono>
#include <thread>

namespace sidecache::test {

inline bool wait_listener_up(proxy::application& app, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto stats = app.database() ? app.database()->notify_stats() : std::nullopt;
        if (stats && stats->up) return true;
        if (std::chrono::steady_clock::now() >= until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

}  // namespace sidecache::test
