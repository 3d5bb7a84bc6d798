#pragma once
// One sidecache process on the example configuration (conf/sidecache.example.yaml),
// run from the source tree (its queries_dir and migrations_dir are relative),
// `environment` ("NAME=value ..." words) before it; its ports read from its
// "listening on" line. Test binaries define SIDECACHE_SOURCE_DIR and
// SIDECACHE_BINARY_DIR (test/CMakeLists.txt).

#include "support/child_process.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace sidecache::test {

struct example_sidecache {
    std::unique_ptr<child_process> process;
    std::uint16_t port = 0;
    std::uint16_t admin_port = 0;

    explicit example_sidecache(const std::string& environment) {
        process = std::make_unique<child_process>("cd " SIDECACHE_SOURCE_DIR " && " + environment +
                                                      " exec " SIDECACHE_BINARY_DIR
                                                      "/sidecache --config " SIDECACHE_SOURCE_DIR
                                                      "/conf/sidecache.example.yaml",
                                                  "sidecache");
        const auto where = process->sidecache_ports();
        port = where.port;
        admin_port = where.admin_port;
    }
};

}  // namespace sidecache::test
