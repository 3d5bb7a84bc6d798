// log.access_log seen from outside: a proxy::application in-process whose
// stdout is a file; after requests (a miss, a hit, a forwarded write, a
// request with a bad token) and the drain, the file holds one JSON line per
// request with what happened to it, the user as a hash, and no token.

#include "auth/verifier.hpp"
#include "proxy/application.hpp"
#include "proxy/server.hpp"
#include "support/admin_stats.hpp"
#include "support/output_capture.hpp"
#include "support/test_client.hpp"
#include "support/test_config.hpp"
#include "support/test_upstream.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/core.h>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace sidecache;
namespace json = boost::json;

namespace {

constexpr std::string_view secret = "access-log-test-secret";

std::string token_for(std::string_view user) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    return auth::sign_hs256(fmt::format(R"({{"sub":"{}","iat":{},"exp":{}}})", user, now, now + 3600), secret);
}

// While it lives, file descriptor 1 (stdout) is a temporary file.
struct stdout_to_file {
    FILE* file = std::tmpfile();
    int saved = -1;

    stdout_to_file() {
        REQUIRE(file != nullptr);
        std::cout.flush();
        std::fflush(stdout);
        saved = ::dup(1);
        ::dup2(::fileno(file), 1);
    }
    ~stdout_to_file() {
        restore();
        std::fclose(file);
    }
    void restore() {
        if (saved < 0) return;
        ::dup2(saved, 1);
        ::close(saved);
        saved = -1;
    }
    // Its lines; also copied for scripts/test's secret check.
    std::vector<std::string> lines() const {
        std::string all;
        char buf[4096];
        ::lseek(::fileno(file), 0, SEEK_SET);
        for (ssize_t n; (n = ::read(::fileno(file), buf, sizeof buf)) > 0;)
            all.append(buf, static_cast<std::size_t>(n));
        test::keep_output("access-log", all);
        std::vector<std::string> out;
        std::istringstream in(all);
        for (std::string line; std::getline(in, line);) out.push_back(line);
        return out;
    }
};

}  // namespace

TEST_CASE("access log: one JSON line per request, the cache's result, the user hashed, no token",
          "[integration]") {
    test::test_upstream up([](const test::recorded_request& r) {
        test::scripted_response res;
        res.headers = {{"Content-Type", "application/json"}};
        res.body = R"({"success":true,"data":"for )" + r.target + "\"}";
        return res;
    });
    auto cfg = test::test_config(up.port());
    cfg.auth.jwt_secret = std::string(secret);
    cfg.cache.enabled = true;
    conf::route_config route;
    route.name = "overview";
    route.path = "/api/dashboard/overview";
    route.query_params = {"days"};
    route.fill = conf::fill_kind::upstream;
    route.utc_day_bound = false;
    cfg.cache.routes = {route};
    cfg.log.access_log = true;
    cfg.log.user_hash_key = "access-log-hash-key";

    stdout_to_file out;
    const auto token = token_for("user-a");
    std::string written;
    {
        proxy::application app(cfg);
        app.start();
        test::test_client client(app.server().port());
        const auto bearer = "Authorization: Bearer " + token + "\r\n";
        for (const char* target : {"/api/dashboard/overview?days=7", "/api/dashboard/overview?days=7"}) {
            client.send(test::get_request(target, bearer));
            auto res = client.read_response();
            REQUIRE(res);
            CHECK(res->status == 200);
            written = res->body;
        }
        client.send("POST /api/agents?secret=abc HTTP/1.1\r\nHost: t\r\n" + bearer +
                    "Content-Length: 2\r\n\r\n{}");
        auto posted = client.read_response();
        REQUIRE(posted);
        CHECK(posted->status == 200);
        client.send(test::get_request("/api/dashboard/overview?days=7", "Authorization: Bearer not-a-token\r\n"));
        auto refused = client.read_response();
        REQUIRE(refused);
        // A line is recorded just after its answer is written: wait for the 4th.
        const auto stats = [&] { return test::admin_stats(app.server().admin_port()).at("access_log").as_object(); };
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (stats().at("lines") != 4) {
            INFO(json::serialize(stats()));
            REQUIRE(std::chrono::steady_clock::now() < until);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        CHECK(stats().at("dropped") == 0);
        app.server().stop();  // writes the buffered lines out
    }
    out.restore();

    const auto lines = out.lines();
    REQUIRE(lines.size() == 4);
    std::vector<json::object> entries;
    for (const auto& line : lines) {
        INFO(line);
        CHECK(line.find(token) == std::string::npos);
        CHECK(line.find("user-a") == std::string::npos);
        CHECK(line.find("abc") == std::string::npos);
        CHECK(line.find("not-a-token") == std::string::npos);
        entries.push_back(json::parse(line).as_object());
        for (const char* key : {"time", "method", "path", "status", "bytes", "duration_ms", "cache"}) {
            INFO(key);
            CHECK(entries.back().contains(key));
        }
    }
    const auto& miss = entries[0];
    CHECK(miss.at("method") == "GET");
    CHECK(miss.at("path") == "/api/dashboard/overview?days=");
    CHECK(miss.at("status") == 200);
    CHECK(miss.at("bytes") == written.size());
    CHECK(miss.at("cache") == "miss_stored");
    CHECK(miss.contains("fill_ms"));
    CHECK(miss.at("user").as_string().size() == 16);

    const auto& hit = entries[1];
    CHECK(hit.at("cache") == "hit");
    CHECK(hit.at("bytes") == written.size());
    CHECK_FALSE(hit.contains("fill_ms"));
    CHECK(hit.at("user") == miss.at("user"));

    const auto& write = entries[2];
    CHECK(write.at("method") == "POST");
    CHECK(write.at("path") == "/api/agents?secret=");
    CHECK(write.at("cache") == "pass");
    CHECK(write.contains("upstream_ms"));

    const auto& refused = entries[3];  // not verified: forwarded, the legacy answers it
    CHECK(refused.at("cache") == "pass");
    CHECK_FALSE(refused.contains("user"));
}
