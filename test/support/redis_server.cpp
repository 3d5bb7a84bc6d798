#include "support/redis_server.hpp"

#include "support/child_process.hpp"

#include <catch2/catch.hpp>
#include <sys/types.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string_view>

namespace sidecache::test {
namespace {

bool skip_asked() {
    const char* skip = std::getenv("SIDECACHE_SKIP_REDIS");
    return skip && std::string_view(skip) == "1";
}

// The value of NAME='value' in scripts/redis's export line.
std::string exported(const std::string& line, const std::string& name) {
    const auto at = line.find(name + "='");
    REQUIRE(at != std::string::npos);
    const auto begin = at + name.size() + 2;
    const auto end = line.find('\'', begin);
    REQUIRE(end != std::string::npos);
    return line.substr(begin, end - begin);
}

std::string script() {
    return std::string(SIDECACHE_SOURCE_DIR) + "/scripts/redis";
}

}  // namespace

std::optional<std::string> shared_redis_url() {
    const char* url = std::getenv("SIDECACHE_TEST_REDIS_URL");
    if (url && *url) return std::string(url);
    // A [redis] test without Redis fails, unless skipping was asked for.
    if (skip_asked()) {
        WARN("SIDECACHE_SKIP_REDIS=1: [redis] test skipped");
        return std::nullopt;
    }
    FAIL(
        "SIDECACHE_TEST_REDIS_URL is unset: start Redis (scripts/test does, scripts/redis start "
        "prints the URL) or set SIDECACHE_SKIP_REDIS=1 to skip [redis] tests");
    return std::nullopt;
}

std::unique_ptr<own_redis> own_redis::start() {
    if (skip_asked()) {
        WARN("SIDECACHE_SKIP_REDIS=1: [redis] test skipped");
        return nullptr;
    }
    std::unique_ptr<own_redis> r(new own_redis());
    r->start_on("");
    return r;
}

void own_redis::start_on(const std::string& port_arg) {
    const auto line = run_command(script() + " start " + (dir_.empty() ? "" : "'" + dir_ + "' " + port_arg));
    dir_ = exported(line, "REDIS_TMP_DIR");
    url_ = exported(line, "REDIS_URL");
    port_ = static_cast<std::uint16_t>(std::stoi(exported(line, "REDIS_PORT")));
    running_ = true;
}

own_redis::~own_redis() {
    if (!dir_.empty()) (void)::system((script() + " stop '" + dir_ + "'").c_str());
}

int own_redis::pid() const {
    std::ifstream in(dir_ + "/redis.pid");
    int pid = 0;
    in >> pid;
    REQUIRE(pid > 0);
    return pid;
}

void own_redis::stop() {
    REQUIRE(running_);
    // scripts/redis stop removes the dir; restart() makes it again.
    run_command(script() + " stop '" + dir_ + "'");
    running_ = false;
}

void own_redis::restart() {
    if (running_) stop();
    start_on(std::to_string(port_));
}

void own_redis::freeze() {
    REQUIRE(::kill(pid(), SIGSTOP) == 0);
}

void own_redis::thaw() {
    REQUIRE(::kill(pid(), SIGCONT) == 0);
}

}  // namespace sidecache::test
