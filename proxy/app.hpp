#pragma once
// The server as main.cpp starts it.

#include "conf/config.hpp"

namespace sidecache::proxy {

// Runs sidecache with this configuration until SIGTERM/SIGINT, then drains
// in-flight requests within server.drain_timeout. Returns the exit code.
int run(const conf::config& cfg);

}  // namespace sidecache::proxy
