#pragma once
// A configuration for in-process tests: every listener on 127.0.0.1:0,
// two io threads, short timeouts, the upstream at 127.0.0.1:<upstream_port>,
// no legacy health probe.

#include "conf/config.hpp"

#include <cstdint>

namespace sidecache::test {

conf::config test_config(std::uint16_t upstream_port);

}  // namespace sidecache::test
