#include "conf/env.hpp"

#include <cstdlib>

namespace sidecache::conf {

env_lookup process_environment() {
    return [](std::string_view name) -> std::optional<std::string> {
        const char* value = std::getenv(std::string(name).c_str());
        if (value == nullptr) return std::nullopt;
        return std::string(value);
    };
}

}  // namespace sidecache::conf
