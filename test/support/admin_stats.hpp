#pragma once
// The admin listener's /stats of a running sidecache, parsed: what the tests
// read counters from.

#include "support/test_client.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <cstdint>

namespace sidecache::test {

inline boost::json::object admin_stats(std::uint16_t admin_port) {
    test_client admin(admin_port);
    admin.send(get_request("/stats"));
    auto r = admin.read_response();
    REQUIRE(r.has_value());
    REQUIRE(r->status == 200);
    return boost::json::parse(r->body).as_object();
}

}  // namespace sidecache::test
