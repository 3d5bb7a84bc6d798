// The process log: levels, one JSON object per line with the fixed keys,
// lines whole under concurrent writers.

#include "log/logger.hpp"
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
namespace json = boost::json;

using test::log_file;

namespace {

json::object parse_line(const std::string& line) {
    INFO(line);
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(v.is_object());
    auto o = v.as_object();
    for (const char* key : {"time", "level", "component", "message"}) {
        INFO(key);
        REQUIRE(o.contains(key));
        REQUIRE(o.at(key).is_string());
    }
    return o;
}

}  // namespace

TEST_CASE("log.level warn: only warn and error lines are written, each a JSON object", "[unit]") {
    log_file out;
    REQUIRE(out.file != nullptr);
    log::logger logger(out.fd(), *log::parse_level("warn"));
    logger.write(log::level::debug, "test", "a debug line");
    logger.write(log::level::info, "test", "an info line");
    logger.write(log::level::warn, "test", "a warn line", {{"count", 3}});
    logger.write(log::level::error, "test", "an error line");

    const auto lines = out.lines();
    REQUIRE(lines.size() == 2);
    const auto warn = parse_line(lines[0]);
    CHECK(warn.at("level") == "warn");
    CHECK(warn.at("component") == "test");
    CHECK(warn.at("message") == "a warn line");
    CHECK(warn.at("count") == 3);
    const auto error = parse_line(lines[1]);
    CHECK(error.at("level") == "error");
    CHECK(error.at("message") == "an error line");
}

TEST_CASE("each level keeps the lines at and above it", "[unit]") {
    auto [name, expected] = GENERATE(table<std::string, std::size_t>({
        {"debug", 4}, {"info", 3}, {"warn", 2}, {"error", 1}}));
    log_file out;
    log::logger logger(out.fd(), *log::parse_level(name));
    for (auto l : {log::level::debug, log::level::info, log::level::warn, log::level::error})
        logger.write(l, "test", std::string(log::to_string(l)));
    const auto lines = out.lines();
    CAPTURE(name);
    CHECK(lines.size() == expected);
    for (const auto& line : lines) CHECK(parse_line(line).at("level") == parse_line(line).at("message"));
}

TEST_CASE("a log line escapes its message and keeps its fields after the fixed keys", "[unit]") {
    const auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'796'397'601'123));
    const auto line = log::format_line(t, log::level::info, "proxy", "say \"hi\"\nnow",
                                       {{"port", 8080}, {"host", "127.0.0.1"}});
    CHECK(line ==
          R"({"time":"2026-12-04T15:20:01.123Z","level":"info","component":"proxy","message":"say \"hi\"\nnow",)"
          R"("port":8080,"host":"127.0.0.1"})");
    CHECK(parse_line(line).at("message") == "say \"hi\"\nnow");
    CHECK_FALSE(log::parse_level("verbose"));
}

TEST_CASE("lines from many threads never interleave", "[unit]") {
    log_file out;
    log::logger logger(out.fd(), log::level::debug);
    constexpr int threads = 8, per_thread = 200;
    const std::string padding(300, 'x');  // long lines: more room to interleave
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t)
        writers.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) logger.write(log::level::info, "test", padding, {{"thread", t}});
        });
    for (auto& w : writers) w.join();
    const auto lines = out.lines();
    REQUIRE(lines.size() == threads * per_thread);
    for (const auto& line : lines) CHECK(parse_line(line).at("message").as_string() == padding);
}
