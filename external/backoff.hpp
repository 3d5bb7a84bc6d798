#pragma once
// Exponential backoff with full jitter (AWS architecture blog, "Exponential
// Backoff And Jitter"): the wait before retry k is uniform in
// [0, min(max, base * multiplier^(k-1))]. Pure: the randomness is a number
// in [0, 1) the caller draws, so tests pick it.

#include "conf/config.hpp"

#include <chrono>
#include <functional>

namespace sidecache::external {

// A source of uniform numbers in [0, 1). Production uses random_unit();
// tests pass a lambda returning fixed values.
using unit_rng = std::function<double()>;

// The ceiling of the jitter window before retry number `retry` (1 = the
// first retry, after the first failed try): min(max, base * multiplier^(retry-1)).
conf::duration backoff_ceiling(const conf::retry_profile& profile, unsigned retry);

// The wait before retry number `retry`, `unit` in [0, 1) (values outside are
// clamped): floor(unit * ceiling), so 0 is possible and the ceiling is not.
conf::duration backoff_delay(const conf::retry_profile& profile, unsigned retry, double unit);

// A thread-safe uniform [0, 1) source seeded from std::random_device.
unit_rng random_unit();

}  // namespace sidecache::external
