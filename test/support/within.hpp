#pragma once
// Polling for what no event announces: a client learns that an entry was
// invalidated or stopped being fresh only by asking again.

#include <chrono>
#include <thread>

namespace sidecache::test {

// Asks `probe` until it holds or `limit` passes, every millisecond; true if
// it held.
template <class Probe>
bool within(std::chrono::milliseconds limit, Probe probe) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (probe()) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

}  // namespace sidecache::test
