#include "external/backoff.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <random>

namespace sidecache::external {

conf::duration backoff_ceiling(const conf::retry_profile& profile, unsigned retry) {
    if (retry == 0) return conf::duration{0};
    const double base = static_cast<double>(profile.base.count());
    const double max = static_cast<double>(profile.max.count());
    const double multiplier = std::max(1.0, profile.multiplier);
    // Computed in floating point and capped before converting: the power
    // overflows no integer however many retries are configured.
    const double ceiling = std::min(max, base * std::pow(multiplier, static_cast<double>(retry - 1)));
    return conf::duration{static_cast<conf::duration::rep>(std::max(0.0, ceiling))};
}

conf::duration backoff_delay(const conf::retry_profile& profile, unsigned retry, double unit) {
    const auto ceiling = backoff_ceiling(profile, retry);
    unit = std::clamp(unit, 0.0, std::nextafter(1.0, 0.0));
    return conf::duration{
        static_cast<conf::duration::rep>(std::floor(unit * static_cast<double>(ceiling.count())))};
}

unit_rng random_unit() {
    struct state {
        std::mutex mutex;
        std::mt19937_64 engine{std::random_device{}()};
        std::uniform_real_distribution<double> dist{0.0, 1.0};
    };
    auto s = std::make_shared<state>();
    return [s] {
        std::lock_guard lock(s->mutex);
        return s->dist(s->engine);
    };
}

}  // namespace sidecache::external
