#pragma once
// Pure policy for the db module: no I/O, time injected.

#include <chrono>

namespace sidecache::db {

// The wait before the next reconnection attempt after `failures` consecutive
// failed ones (1, 2, ...): 100 ms doubling, capped at `max`.
std::chrono::milliseconds reconnect_backoff(unsigned failures, std::chrono::milliseconds max);

// When the views should next be refreshed, after one at `now`: `interval`
// later, or just after the next UTC midnight if that comes first (so closed
// days move into the views as the date rolls over). interval 0: only at
// midnight.
std::chrono::system_clock::time_point next_refresh_at(std::chrono::system_clock::time_point now,
                                                      std::chrono::milliseconds interval);

}  // namespace sidecache::db
