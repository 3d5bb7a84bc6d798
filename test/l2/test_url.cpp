// options_from: a redis:// URL (conf::parse_redis_url, the one parser) and
// the l2 section to the client's options.

#include "conf/config.hpp"
#include "conf/values.hpp"
#include "l2/client.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace sidecache;

TEST_CASE("options_from carries host, port, user, password and db of a parsed URL [unit]") {
    struct row {
        std::string url, host;
        unsigned port;
        std::string user, password;
        int db;
    };
    auto r = GENERATE(values<row>({
        {"redis://127.0.0.1:6380/0", "127.0.0.1", 6380, "", "", 0},
        {"redis://cache.internal", "cache.internal", 6379, "", "", 0},
        {"redis://cache.internal/", "cache.internal", 6379, "", "", 0},
        {"redis://cache:7000/3", "cache", 7000, "", "", 3},
        {"redis://:s3cret@cache:7000/1", "cache", 7000, "", "s3cret", 1},
        {"redis://sidecache:p%40ss@cache:7000/2", "cache", 7000, "sidecache", "p@ss", 2},
        {"redis://[::1]:6390/0", "::1", 6390, "", "", 0},
    }));
    INFO(r.url);
    auto url = conf::parse_redis_url(r.url);
    REQUIRE(url.has_value());
    const auto o = l2::options_from(*url);
    CHECK(o.host == r.host);
    CHECK(o.port == r.port);
    CHECK(o.user == r.user);
    CHECK(o.password == r.password);
    CHECK(o.db == r.db);
    // The rest keeps its defaults.
    CHECK(o.op_timeout == std::chrono::milliseconds(20));
    CHECK(o.connections == 2);
}

TEST_CASE("options_from an l2 section takes its connections, timeouts and breaker [unit]") {
    conf::l2_config c;
    c.url = *conf::parse_redis_url("redis://:pw@cache:7001/4");
    c.connections = 5;
    c.op_timeout = std::chrono::milliseconds(35);
    c.connect_timeout = std::chrono::milliseconds(450);
    c.breaker_failures = 9;
    c.breaker_open_for = std::chrono::milliseconds(2500);
    const auto o = l2::options_from(c);
    CHECK(o.host == "cache");
    CHECK(o.port == 7001);
    CHECK(o.password == "pw");
    CHECK(o.db == 4);
    CHECK(o.connections == 5);
    CHECK(o.op_timeout == std::chrono::milliseconds(35));
    CHECK(o.connect_timeout == std::chrono::milliseconds(450));
    CHECK(o.breaker_failures == 9);
    CHECK(o.breaker_open_for == std::chrono::milliseconds(2500));
}

TEST_CASE("a redis URL the client could not use is refused where it is parsed [unit]") {
    auto url =
        GENERATE(as<std::string>{}, "", "cache:6379", "http://cache:6379/0", "rediss://cache:6379/0",
                 "redis:///0", "redis://cache:6379/x", "redis://cache:6379/-1", "redis://cache:6379/0/1",
                 "redis://cache:0/0", "redis://cache:6379/0?timeout=1", "redis://cache:99999/0");
    INFO(url);
    CHECK_FALSE(conf::parse_redis_url(url).has_value());
}
