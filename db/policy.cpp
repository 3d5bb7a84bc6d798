#include "db/policy.hpp"

#include <algorithm>

namespace sidecache::db {

std::chrono::milliseconds reconnect_backoff(unsigned failures, std::chrono::milliseconds max) {
    std::chrono::milliseconds wait{100};
    for (unsigned i = 1; i < failures && wait < max; ++i) wait *= 2;
    return std::min(wait, max);
}

std::chrono::system_clock::time_point next_refresh_at(std::chrono::system_clock::time_point now,
                                                      std::chrono::milliseconds interval) {
    using namespace std::chrono;
    // system_clock is UTC (Unix time): floor to days is the UTC midnight.
    system_clock::time_point midnight = floor<days>(now) + days(1) + seconds(1);
    if (interval.count() <= 0) return midnight;
    return std::min<system_clock::time_point>(now + interval, midnight);
}

}  // namespace sidecache::db
