// The l2 client's round trip: GET of a 2 KiB value on loopback, one command
// at a time, N times; prints p50, p99 and the maximum.
//
//   eval "$(scripts/redis start)"
//   build/bench/l2_latency "$REDIS_URL" [N]        (N: 10000)
//   scripts/redis stop "$REDIS_TMP_DIR"

#include "conf/config.hpp"
#include "conf/values.hpp"
#include "l2/client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

namespace net = boost::asio;
using namespace sidecache;
using steady = std::chrono::steady_clock;

namespace {

// Each GET's duration in microseconds, sorted; empty if one failed.
net::awaitable<std::vector<double>> measure(l2::client& c, int n) {
    std::vector<std::string> set{"SET", "l2-latency:value", std::string(2048, 'x')};
    if (!co_await c.command(std::move(set))) co_return std::vector<double>{};
    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        std::vector<std::string> get{"GET", "l2-latency:value"};
        const auto start = steady::now();
        auto r = co_await c.command(std::move(get));
        const auto took = steady::now() - start;
        if (!r || r->str.size() != 2048) co_return std::vector<double>{};
        us.push_back(std::chrono::duration<double, std::micro>(took).count());
    }
    std::sort(us.begin(), us.end());
    co_return us;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        fmt::print(stderr, "usage: l2_latency REDIS_URL [N]\n");
        return 2;
    }
    auto url = conf::parse_redis_url(argv[1]);
    if (!url) {
        fmt::print(stderr, "l2_latency: {}\n", url.error().message);
        return 2;
    }
    const auto opts = l2::options_from(*url);
    const int n = argc > 2 ? std::atoi(argv[2]) : 10'000;
    net::io_context ioc;
    l2::client c(ioc, opts);
    auto f = net::co_spawn(ioc, measure(c, n), net::use_future);
    ioc.run();
    const auto us = f.get();
    if (us.empty() || n <= 0) {
        fmt::print(stderr, "l2_latency: a command failed\n");
        return 1;
    }
    auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<std::size_t>(q * us.size()))]; };
    fmt::print("GET 2 KiB x {}: p50 {:.1f} us, p99 {:.1f} us, max {:.1f} us\n", n, at(0.50), at(0.99),
               us.back());
    return 0;
}
