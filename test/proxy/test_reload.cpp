// Reloading the configuration of the real binary (SIGHUP, POST /reload)
// while it serves: a cached route (fill: upstream) in front of a scripted
// legacy that counts its calls per user. A new ttl applies to the entries
// filled after it, the entries already cached stay (a hit before is a hit
// after), no request of a steady load fails; a broken file changes nothing
// (same answers, its FILE:LINE:COL error in the log, the error counter +1);
// a key that needs a restart is reported and left as it is.

#include "support/admin_stats.hpp"
#include "support/authorized_get.hpp"
#include "support/child_process.hpp"
#include "support/test_client.hpp"
#include "support/test_upstream.hpp"
#include "support/within.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <unistd.h>

using namespace sidecache;
using namespace sidecache::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

constexpr const char* jwt_secret = "reload-secret";
constexpr const char* admin_token = "reload-admin-token";
constexpr const char* route_path = "/api/dashboard/overview";

// The legacy: each GET of the route answers a new figure; calls counted per token.
struct counting_legacy {
    std::mutex mutex;
    std::map<std::string, int> calls;  // by Authorization header
    int filled = 0;
    test_upstream upstream{[this](const recorded_request& r) {
        std::lock_guard lock(mutex);
        ++calls[r.header("Authorization")];
        scripted_response res;
        res.headers.emplace_back("Content-Type", "application/json");
        res.body = fmt::format(R"({{"fill":{}}})", ++filled);
        return res;
    }};
    int calls_for(const std::string& token) {
        std::lock_guard lock(mutex);
        return calls["Bearer " + token];
    }
};

// The configuration file: the route's `ttl`, `server_extra` lines under server.
std::string config_text(std::uint16_t legacy_port, const std::string& ttl, const std::string& server_extra = "",
                        const std::string& token = admin_token, unsigned threads = 2) {
    return fmt::format(
        "server:\n  listen: 127.0.0.1:0\n  threads: {}\n{}"
        "admin:\n  listen: 127.0.0.1:0\n  token: {}\n"
        "upstream:\n  url: http://127.0.0.1:{}\n  health_check_interval: 0s\n"
        "auth:\n  jwt_secret: {}\n"
        "cache:\n  routes:\n"
        "    - name: overview\n      path: {}\n      ttl: {}\n      stale_while_revalidate: 0s\n"
        "      utc_day_bound: false\n",
        threads, server_extra, token, legacy_port, jwt_secret, route_path, ttl);
}

// The binary running a configuration file this test rewrites.
struct reloadable_sidecache {
    counting_legacy legacy;
    std::string path = fmt::format("/tmp/sidecache-reload-{}.yaml", ::getpid());
    std::unique_ptr<child_process> process;
    std::uint16_t port = 0;
    std::uint16_t admin_port = 0;

    reloadable_sidecache() {
        write(config_text(legacy.upstream.port(), "10m"));
        process = std::make_unique<child_process>("exec " SIDECACHE_BINARY_DIR "/sidecache --config " + path,
                                                  "sidecache-reload");
        const auto where = process->sidecache_ports();
        port = where.port;
        admin_port = where.admin_port;
    }
    ~reloadable_sidecache() {
        process.reset();
        std::filesystem::remove(path);
    }

    void write(const std::string& text) const { std::ofstream(path) << text; }

    // The first log line holding `needle`, reading at most 20 s; "" if none.
    std::string wait_log(const std::string& needle) {
        const auto until = std::chrono::steady_clock::now() + 20s;
        while (std::chrono::steady_clock::now() < until) {
            auto l = process->line(1s);
            if (l.find(needle) != std::string::npos) return l;
        }
        return "";
    }

    // A GET of the route with `token` (one per user, minted once: the legacy counts by token).
    answer get(test_client& c, const std::string& token) { return authorized_get(c, route_path, token); }

    client_response admin(const std::string& method, const std::string& target,
                          const std::string& token = admin_token) {
        test_client c(admin_port);
        c.send(fmt::format("{} {} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
                           method, target, token));
        auto r = c.read_response();
        REQUIRE(r.has_value());
        return *r;
    }
    json::object config() {
        auto r = admin("GET", "/config");
        REQUIRE(r.status == 200);
        return json::parse(r.body).as_object();
    }
    std::string route_ttl() {
        return json::value_to<std::string>(config().at("cache").at("routes").at(0).at("ttl"));
    }
    std::int64_t reloads(const char* result) {
        auto r = admin("GET", "/stats");
        REQUIRE(r.status == 200);
        return json::parse(r.body).at("reload").at(result).to_number<std::int64_t>();
    }
};

// Requests of one user on one keep-alive connection until stopped; every
// answer must be a 200 with a body.
struct steady_load {
    std::atomic<bool> stop{false};
    std::atomic<int> answered{0};
    std::atomic<int> failed{0};
    std::thread thread;

    steady_load(std::uint16_t port, const std::string& token) {
        thread = std::thread([this, port, token] {
            try {
                test_client c(port);
                while (!stop) {
                    c.send(get_request(route_path, "Authorization: Bearer " + token + "\r\n"));
                    auto r = c.read_response();
                    if (r && r->status == 200 && !r->body.empty()) {
                        ++answered;
                    } else {
                        ++failed;
                        return;
                    }
                }
            } catch (...) {
                ++failed;
            }
        });
    }
    ~steady_load() { finish(); }
    void finish() {
        stop = true;
        if (thread.joinable()) thread.join();
    }
};

// Each file position of a conf::error: "FILE:LINE:COL:".
bool names_file_line_col(const std::string& text, const std::string& file) {
    return std::regex_search(text, std::regex(std::regex_replace(file, std::regex(R"([.])"), R"(\.)") + R"(:\d+:\d+:)"));
}

}  // namespace

TEST_CASE("SIGHUP under load: a new ttl applies to new entries, cached entries stay hits, no request fails",
          "[integration]") {
    reloadable_sidecache sc;
    test_client c(sc.port);
    const auto kept = token_for("kept", jwt_secret);
    CHECK(sc.get(c, kept).x_cache == "MISS");
    CHECK(sc.get(c, kept).x_cache == "HIT");
    steady_load load(sc.port, token_for("steady", jwt_secret));
    REQUIRE(within(20s, [&] { return load.answered > 20 || load.failed > 0; }));

    sc.write(config_text(sc.legacy.upstream.port(), "1s"));
    sc.process->signal(SIGHUP);
    const auto line = sc.wait_log("\"reloaded\"");
    INFO(line);
    REQUIRE(!line.empty());
    CHECK(line.find("cache.routes[0].ttl") != std::string::npos);
    CHECK(sc.route_ttl() == "1s");
    CHECK(sc.reloads("ok") == 1);
    CHECK(sc.reloads("error") == 0);

    // Still serving the load, and the entry cached before is a hit after.
    const int answered_at_reload = load.answered;
    REQUIRE(within(20s, [&] { return load.answered > answered_at_reload + 20 || load.failed > 0; }));
    CHECK(sc.get(c, kept).x_cache == "HIT");
    CHECK(sc.legacy.calls_for(kept) == 1);

    // A new entry lives 1 s now: it is refilled once that passed.
    const auto fresh = token_for("after", jwt_secret);
    CHECK(sc.get(c, fresh).x_cache == "MISS");
    REQUIRE(within(20s, [&] { return sc.get(c, fresh).x_cache == "MISS"; }));
    CHECK(sc.legacy.calls_for(fresh) == 2);
    // ... while the one stored with the old ttl (10 min) is still a hit.
    CHECK(sc.get(c, kept).x_cache == "HIT");
    CHECK(sc.legacy.calls_for(kept) == 1);

    load.finish();
    CHECK(load.failed == 0);
    CHECK(load.answered > answered_at_reload);
}

TEST_CASE("SIGHUP with a broken file changes nothing: same answers, its error logged, the error counter",
          "[integration]") {
    reloadable_sidecache sc;
    test_client c(sc.port);
    const auto kept = token_for("kept", jwt_secret);
    const auto first = sc.get(c, kept);
    CHECK(first.x_cache == "MISS");

    sc.write(config_text(sc.legacy.upstream.port(), "soon"));
    sc.process->signal(SIGHUP);
    const auto line = sc.wait_log("reload rejected");
    INFO(line);
    REQUIRE(!line.empty());
    CHECK(names_file_line_col(line, sc.path));
    CHECK(line.find("ttl") != std::string::npos);
    CHECK(sc.reloads("error") == 1);
    CHECK(sc.reloads("ok") == 0);
    CHECK(sc.route_ttl() == "10m");
    const auto after = sc.get(c, kept);
    CHECK(after.x_cache == "HIT");
    CHECK(after.body == first.body);
    CHECK(sc.legacy.calls_for(kept) == 1);
}

TEST_CASE("POST /reload: applied and needs-restart keys listed, a broken file 422 with FILE:LINE:COL",
          "[integration]") {
    reloadable_sidecache sc;
    test_client c(sc.port);
    const auto kept = token_for("kept", jwt_secret);
    CHECK(sc.get(c, kept).x_cache == "MISS");

    SECTION("a live key and a restart-only key") {
        sc.write(config_text(sc.legacy.upstream.port(), "5s", "  max_pipelined: 4\n", admin_token, 3));
        // An unauthorized reload does nothing.
        CHECK(sc.admin("POST", "/reload", "not-the-token").status == 401);
        auto r = sc.admin("POST", "/reload");
        INFO(r.body);
        REQUIRE(r.status == 200);
        const auto body = json::parse(r.body);
        CHECK(body.at("reloaded").as_bool());
        CHECK(body.at("applied").as_array() == json::array{"server.max_pipelined", "cache.routes[0].ttl"});
        CHECK(body.at("needs_restart").as_array() == json::array{"server.threads"});
        CHECK(!sc.wait_log("needs a restart").empty());
        const auto cfg = sc.config();
        CHECK(cfg.at("server").at("threads").to_number<int>() == 2);
        CHECK(cfg.at("server").at("max_pipelined").to_number<int>() == 4);
        CHECK(sc.route_ttl() == "5s");
        CHECK(sc.get(c, kept).x_cache == "HIT");
        CHECK(sc.reloads("ok") == 1);
        CHECK(sc.reloads("versions") == 2);
        // The same file again: nothing applied, no new version kept.
        r = sc.admin("POST", "/reload");
        REQUIRE(r.status == 200);
        CHECK(json::parse(r.body).at("applied").as_array().empty());
        CHECK(sc.reloads("ok") == 2);
        CHECK(sc.reloads("versions") == 2);
    }
    SECTION("a new admin token: the old one is refused from then on") {
        sc.write(config_text(sc.legacy.upstream.port(), "10m", "", "reload-admin-token-2"));
        auto r = sc.admin("POST", "/reload");
        INFO(r.body);
        REQUIRE(r.status == 200);
        CHECK(json::parse(r.body).at("applied").as_array() == json::array{"admin.token"});
        CHECK(sc.admin("GET", "/stats").status == 401);
        CHECK(sc.admin("GET", "/stats", "reload-admin-token-2").status == 200);
    }
    SECTION("a broken file") {
        sc.write(config_text(sc.legacy.upstream.port(), "10m") + "  unknown_key: 1\n");
        auto r = sc.admin("POST", "/reload");
        INFO(r.body);
        CHECK(r.status == 422);
        const auto body = json::parse(r.body);
        CHECK(!body.at("reloaded").as_bool());
        const auto error = json::value_to<std::string>(body.at("error"));
        CHECK(names_file_line_col(error, sc.path));
        CHECK(!sc.wait_log("reload rejected").empty());
        CHECK(sc.reloads("error") == 1);
        CHECK(sc.get(c, kept).x_cache == "HIT");
    }
}
