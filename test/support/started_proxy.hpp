#pragma once
// A proxy in front of 127.0.0.1:<upstream_port> (test_config), with `tweak`
// applied to its configuration, started: its port is listening on return.

#include "proxy/server.hpp"
#include "support/test_config.hpp"

#include <cstdint>
#include <functional>
#include <memory>

namespace sidecache::test {

inline std::unique_ptr<proxy::server> start_proxy(std::uint16_t upstream_port,
                                                  const std::function<void(conf::config&)>& tweak = {}) {
    auto cfg = test_config(upstream_port);
    if (tweak) tweak(cfg);
    auto srv = std::make_unique<proxy::server>(cfg);
    srv->start();
    return srv;
}

}  // namespace sidecache::test
