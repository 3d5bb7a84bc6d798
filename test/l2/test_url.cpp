// parse_url: redis://[user:password@]host[:port][/db] to client_options.

#include "l2/client.hpp"

#include <catch2/catch.hpp>

#include <string>

using sidecache::l2::parse_url;

TEST_CASE("parse_url reads host, port, user, password and db [unit]") {
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
    auto o = parse_url(r.url);
    REQUIRE(o.has_value());
    CHECK(o->host == r.host);
    CHECK(o->port == r.port);
    CHECK(o->user == r.user);
    CHECK(o->password == r.password);
    CHECK(o->db == r.db);
    // The rest keeps its defaults.
    CHECK(o->op_timeout == std::chrono::milliseconds(20));
    CHECK(o->connections == 2);
}

TEST_CASE("parse_url refuses what is not a redis:// URL with a host [unit]") {
    auto url =
        GENERATE(as<std::string>{}, "", "cache:6379", "http://cache:6379/0", "rediss://cache:6379/0",
                 "redis:///0", "redis://cache:6379/x", "redis://cache:6379/-1", "redis://cache:6379/0/1",
                 "redis://cache:0/0", "redis://cache:6379/0?timeout=1", "redis://cache:99999/0");
    INFO(url);
    CHECK_FALSE(parse_url(url).has_value());
}
