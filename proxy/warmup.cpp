#include "proxy/warmup.hpp"

#include "cache/midnight_refill.hpp"
#include "db/pool.hpp"
#include "log/logger.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/json/parse.hpp>
#include <fmt/core.h>

#include <exception>

namespace sidecache::proxy {

namespace net = boost::asio;
using steady = std::chrono::steady_clock;

warmup::warmup(const conf::warmup_config& config, db::pool& database, cache::midnight_refill& passes,
               net::any_io_executor ex)
    : config_(config), database_(database), passes_(passes), ex_(std::move(ex)) {}

void warmup::trigger() {
    again_ = true;
    if (running_.exchange(true)) return;  // the pass running goes once more
    net::co_spawn(ex_, run(), [this](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                log::error("cache", "the warm-up stopped", {{"error", x.what()}});
            }
            first_done_ = true;
            running_ = false;
        }
    });
}

net::awaitable<void> warmup::run() {
    for (;;) {
        while (again_.exchange(false)) {
            const auto began = steady::now();
            auto users = co_await recent_users();
            users_ = users.size();
            co_await passes_.warm(std::move(users), config_.concurrency);
            ++passes_run_;
            const auto& s = passes_.warm_stats();
            log::info("cache", "warm-up pass ended",
                      {{"users", users_.load()},
                       {"filled", s.refilled.load()},
                       {"failed", s.failed.load()},
                       {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - began).count()}});
        }
        first_done_ = true;
        running_ = false;
        // A trigger between the last check and here found it running: take it.
        if (!again_.load() || running_.exchange(true)) co_return;
    }
}

net::awaitable<std::vector<std::string>> warmup::recent_users() {
    std::vector<std::string> users;
    // At start the pool is still connecting.
    const auto deadline = steady::now() + std::chrono::seconds(30);
    const bool ready = co_await database_.wait_ready(deadline);
    if (!ready) {
        ++errors_;
        log::warn("cache", "warm-up: PostgreSQL not ready, no user warmed");
        co_return users;
    }
    const auto param = fmt::format(R"({{"users":{},"lookback_seconds":{}}})", config_.users,
                                   std::chrono::duration<double>(config_.lookback).count());
    auto answer = co_await database_.query_json("warmup_users", param, deadline, db::query_priority::background);
    if (!answer) {
        ++errors_;
        log::warn("cache", "warm-up: the recent users could not be read", {{"error", answer.error().message()}});
        co_return users;
    }
    boost::system::error_code ec;
    auto parsed = boost::json::parse(*answer, ec);
    if (ec || !parsed.is_array()) {
        ++errors_;
        co_return users;
    }
    for (const auto& id : parsed.as_array())
        if (id.is_string()) users.emplace_back(id.as_string());
    co_return users;
}

std::string warmup::readiness() const {
    if (config_.ready_timeout.count() <= 0 || first_done_) return "";
    return steady::now() - created_ < config_.ready_timeout ? "warming up" : "";
}

}  // namespace sidecache::proxy
