#pragma once
// The environment as the configuration loader sees it: injectable for tests.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace sidecache::conf {

// The value of an environment variable, or nullopt when it is unset.
using env_lookup = std::function<std::optional<std::string>(std::string_view name)>;

// The process environment (getenv).
env_lookup process_environment();

}  // namespace sidecache::conf
