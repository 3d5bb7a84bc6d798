// Cold fill latency of db::pool::query_json per endpoint (no cache), and a
// read's latency while REFRESH MATERIALIZED VIEW CONCURRENTLY runs.
//
//   fill_bench DATABASE_URL QUERIES_DIR USERS_FILE [ROUNDS]
//
// USERS_FILE: one user id per line (the first column of `mint.js --all`).
// Prints one line per endpoint: n, p50, p95, p99, max in ms, and its three
// slowest users; then the refresh's duration and the reads' latency while it
// ran. bench/fill/run drives it.
#include "db/migrate.hpp"
#include "db/pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace sidecache;
using clk = std::chrono::steady_clock;

namespace {

template <class T>
T run_sync(boost::asio::awaitable<T> a) {
    boost::asio::io_context ioc;
    auto f = boost::asio::co_spawn(ioc, std::move(a), boost::asio::use_future);
    ioc.run();
    return f.get();
}

double ms(clk::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

void report(const char* what, std::vector<double> v) {
    if (v.empty()) return;
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<std::size_t>(q * v.size()))]; };
    std::printf("%-28s n=%-5zu p50=%7.2f p95=%7.2f p99=%7.2f max=%7.2f ms\n", what, v.size(), at(0.5),
                at(0.95), at(0.99), v.back());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: fill_bench DATABASE_URL QUERIES_DIR USERS_FILE [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 4 ? std::stoi(argv[4]) : 1;
    std::vector<std::string> users;
    std::ifstream in(argv[3]);
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) users.push_back(l.substr(0, l.find('\t')));

    conf::database_config cfg;
    cfg.url = argv[1];
    cfg.queries_dir = argv[2];
    cfg.pool_size = 2;
    cfg.query_timeout = std::chrono::seconds(10);
    cfg.refresh_interval = std::chrono::milliseconds(0);
    db::pool p(cfg);
    p.start();
    if (!run_sync(p.wait_ready(clk::now() + std::chrono::seconds(10)))) {
        std::fprintf(stderr, "not ready: %s\n", p.reason().c_str());
        return 1;
    }
    for (const char* q : {"overview", "analytics", "agents"}) {
        std::vector<double> lat;
        std::vector<std::pair<double, std::string>> by_user;
        for (int r = 0; r < rounds; ++r)
            for (const auto& u : users) {
                auto t0 = clk::now();
                auto res = run_sync(p.query_json(q, u, t0 + std::chrono::seconds(10)));
                lat.push_back(ms(clk::now() - t0));
                by_user.emplace_back(lat.back(), u);
                if (!res) std::fprintf(stderr, "%s %s: %s\n", q, u.c_str(), res.error().message().c_str());
            }
        report((std::string("sidecache ") + q).c_str(), lat);
        // The slowest fills by user: is the max a heavy user or the machine?
        auto top = std::min<std::size_t>(3, by_user.size());
        std::partial_sort(by_user.begin(), by_user.begin() + static_cast<std::ptrdiff_t>(top), by_user.end(),
                          [](const auto& a, const auto& b) { return a.first > b.first; });
        for (std::size_t i = 0; i < top; ++i)
            std::printf("  slowest %zu: %s %.2f ms\n", i + 1, by_user[i].second.c_str(), by_user[i].first);
    }

    // A refresh on another thread (the CLI path), reads meanwhile.
    std::atomic<bool> done{false};
    clk::duration refresh_took{};
    std::thread refresher([&] {
        conf::config c;
        c.database = cfg;
        auto t0 = clk::now();
        db::run_refresh(c);
        refresh_took = clk::now() - t0;
        done = true;
    });
    std::vector<double> during;
    for (std::size_t i = 0; !done; ++i) {
        auto t0 = clk::now();
        (void)run_sync(p.query_json("agents", users[i % users.size()], t0 + std::chrono::seconds(10)));
        if (!done) during.push_back(ms(clk::now() - t0));
    }
    refresher.join();
    std::printf("refresh (REFRESH CONCURRENTLY) took %.0f ms\n", ms(refresh_took));
    report("agents during the refresh", during);
    p.stop();
    return 0;
}
