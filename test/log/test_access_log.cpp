// The access log on its own: the line's fields, the query's values dropped,
// the user hashed with the configured key, lines written by the interval
// flush and at destruction, and lines dropped (counted) when a buffer is full.

#include "log/access_log.hpp"
#include "support/log_file.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace sidecache;
using namespace std::chrono_literals;
namespace json = boost::json;

using test::log_file;

namespace {

constexpr std::string_view key = "0123456789abcdef";

log::access_log_options writing_to(int fd, std::string_view hash_key = {}) {
    log::access_log_options o;
    o.fd = fd;
    o.user_hash_key = std::string(hash_key);
    return o;
}

log::access_entry sample() {
    log::access_entry e;
    e.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'796'397'601'123));
    e.method = "GET";
    e.target = "/api/dashboard/analytics?days=7&tz=Europe%2FParis";
    e.status = 200;
    e.bytes = 512;
    e.duration = 1500us;
    e.cache = "hit";
    e.user_id = "user-1";
    return e;
}

}  // namespace

TEST_CASE("an access log line: fields, query names without values, the user as a keyed hash", "[unit]") {
    log_file out;
    {
        log::access_log access(writing_to(out.fd(), key));
        auto miss = sample();
        miss.cache = "miss_stored";
        miss.fill = 12ms;
        access.record(sample());
        access.record(miss);
        auto forwarded = sample();
        forwarded.cache = "pass";
        forwarded.user_id = {};
        forwarded.method = "POST";
        forwarded.target = "/api/agents";
        forwarded.upstream = 3ms;
        access.record(forwarded);
        CHECK(access.recorded() == 3);
    }  // destruction writes the lines
    const auto lines = out.lines();
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] ==
          R"({"time":"2026-12-04T15:20:01.123Z","method":"GET","path":"/api/dashboard/analytics?days=&tz=",)"
          R"("status":200,"bytes":512,"duration_ms":1.500,"cache":"hit","user":"9671a70114c638ee"})");
    for (const auto& line : lines) {
        INFO(line);
        CHECK(line.find("user-1") == std::string::npos);
        CHECK(line.find("Paris") == std::string::npos);
        CHECK(json::parse(line).is_object());
    }
    const auto miss = json::parse(lines[1]).as_object();
    CHECK(miss.at("cache") == "miss_stored");
    CHECK(miss.at("fill_ms").as_double() == 12.0);
    CHECK(miss.at("user") == "9671a70114c638ee");
    const auto forwarded = json::parse(lines[2]).as_object();
    CHECK(forwarded.at("cache") == "pass");
    CHECK(forwarded.at("method") == "POST");
    CHECK(forwarded.at("upstream_ms").as_double() == 3.0);
    CHECK_FALSE(forwarded.contains("user"));
}

TEST_CASE("without a configured key the user hash is random per process, stable within it", "[unit]") {
    log::access_log a(writing_to(-1)), b(writing_to(-1));
    CHECK(a.user_hash("user-1") == a.user_hash("user-1"));
    CHECK(a.user_hash("user-1") != b.user_hash("user-1"));
    CHECK(a.user_hash("user-1").size() == 16);
    log::access_log keyed(writing_to(-1, key));
    CHECK(keyed.user_hash("user-1") == "9671a70114c638ee");
}

TEST_CASE("the query's values are dropped, its names kept", "[unit]") {
    auto [target, expected] = GENERATE(table<std::string, std::string>({
        {"/a", "/a"},
        {"/a?", "/a?"},
        {"/a?x=1", "/a?x="},
        {"/a?x=1&y=2", "/a?x=&y="},
        {"/a?token=eyJhbGciOi.x.y&flag", "/a?token=&flag="},
        {"/a?x=1&&y", "/a?x=&&y="},
    }));
    CAPTURE(target);
    CHECK(log::without_query_values(target) == expected);
}

TEST_CASE("the writer flushes on its interval without being asked", "[unit]") {
    log_file out;
    auto options = writing_to(out.fd());
    options.flush_interval = 20ms;
    log::access_log access(options);
    access.record(sample());
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (out.lines().empty()) {
        REQUIRE(std::chrono::steady_clock::now() < until);  // no line within 10 s: no interval flush
        std::this_thread::sleep_for(5ms);
    }
    CHECK(out.lines().size() == 1);
}

TEST_CASE("a full buffer drops lines and counts them, never blocks", "[unit]") {
    log_file out;
    // An interval long enough that nothing is written during the test.
    auto options = writing_to(out.fd());
    options.flush_interval = 1h;
    options.flush_bytes = 1 << 20;
    options.max_bytes = 1000;
    log::access_log access(options);
    for (int i = 0; i < 100; ++i) access.record(sample());
    CHECK(access.dropped() > 0);
    CHECK(access.recorded() + access.dropped() == 100);
    access.flush();
    CHECK(out.lines().size() == access.recorded());
}
