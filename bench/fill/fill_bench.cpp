// Cold fill latency of db::pool::query_json per endpoint (no cache), and the
// same while REFRESH MATERIALIZED VIEW CONCURRENTLY runs.
//
//   fill_bench DATABASE_URL QUERIES_DIR USERS_FILE [ROUNDS] [CLIENTS] [WATCHED_FILE]
//
// USERS_FILE: one user id per line (the first column of `mint.js --all`).
// WATCHED_FILE: user ids (first column) whose own fills are printed by name
// after each endpoint's line (the heaviest users, from bench/fill/run); they
// are filled in every turn during the refresh too.
// CLIENTS (default 1): fills at once, each client taking the next user, on a
// pool of database.pool_size 4 (the example configuration's) when CLIENTS >
// 1, so a fill's time includes its wait for a connection, as in sidecache.
// Prints one line per endpoint: n, p50, p95, p99, max in ms, and its three
// slowest users; then the refresh's duration and every endpoint's fills while
// it ran (the same clients). bench/fill/run drives it.
#include "db/migrate.hpp"
#include "db/pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
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

// `clients` coroutines fill `query` for users[next++] until `more()` says
// stop; every fill's time and user.
struct fills {
    std::vector<double> ms_each;
    std::vector<std::pair<double, std::string>> by_user;
};

fills fill_all(db::pool& p, const char* query, const std::vector<std::string>& users, int clients,
               const std::function<bool(std::size_t)>& more) {
    namespace net = boost::asio;
    fills out;
    std::size_t next = 0;
    net::io_context ioc;
    auto client = [&]() -> net::awaitable<void> {
        for (std::size_t i = next++; more(i); i = next++) {
            const auto& u = users[i % users.size()];
            auto t0 = clk::now();
            auto res = co_await p.query_json(query, u, t0 + std::chrono::seconds(30));
            out.ms_each.push_back(ms(clk::now() - t0));
            out.by_user.emplace_back(out.ms_each.back(), u);
            if (!res) std::fprintf(stderr, "%s %s: %s\n", query, u.c_str(), res.error().message().c_str());
        }
    };
    for (int c = 0; c < clients; ++c) net::co_spawn(ioc, client(), net::detached);
    ioc.run();
    return out;
}

// The watched users' fills (each one's slowest) by user.
void report_watched(const fills& f, const std::vector<std::pair<std::string, std::string>>& watched) {
    for (const auto& [id, name] : watched) {
        double worst = -1;
        int n = 0;
        for (const auto& [t, u] : f.by_user)
            if (u == id) worst = std::max(worst, t), ++n;
        if (n > 0) std::printf("  watched %s (%s): %.2f ms (max of %d)\n", id.c_str(), name.c_str(), worst, n);
    }
}

void report_slowest(fills f) {
    // The slowest fills by user: is the max a heavy user or the machine?
    auto top = std::min<std::size_t>(3, f.by_user.size());
    std::partial_sort(f.by_user.begin(), f.by_user.begin() + static_cast<std::ptrdiff_t>(top), f.by_user.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t i = 0; i < top; ++i)
        std::printf("  slowest %zu: %s %.2f ms\n", i + 1, f.by_user[i].second.c_str(), f.by_user[i].first);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr,
                     "usage: fill_bench DATABASE_URL QUERIES_DIR USERS_FILE [ROUNDS] [CLIENTS] [WATCHED_FILE]\n");
        return 2;
    }
    const int rounds = argc > 4 ? std::stoi(argv[4]) : 1;
    const int clients = argc > 5 ? std::max(1, std::stoi(argv[5])) : 1;
    std::vector<std::string> users;
    std::ifstream in(argv[3]);
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) users.push_back(l.substr(0, l.find('\t')));
    // id, then the rest of the line (a name) as its label.
    std::vector<std::pair<std::string, std::string>> watched;
    if (argc > 6) {
        std::ifstream w(argv[6]);
        for (std::string l; std::getline(w, l);) {
            if (l.empty()) continue;
            auto tab = l.find('\t');
            watched.emplace_back(l.substr(0, tab), tab == std::string::npos ? "" : l.substr(tab + 1));
        }
    }

    conf::database_config cfg;
    cfg.url = argv[1];
    cfg.queries_dir = argv[2];
    cfg.pool_size = clients > 1 ? 4 : 2;
    cfg.query_timeout = std::chrono::seconds(10);
    cfg.refresh_interval = std::chrono::milliseconds(0);
    db::pool p(cfg);
    p.start();
    if (!run_sync(p.wait_ready(clk::now() + std::chrono::seconds(10)))) {
        std::fprintf(stderr, "not ready: %s\n", p.reason().c_str());
        return 1;
    }
    std::printf("# %d client(s) at once, pool_size %zu\n", clients, cfg.pool_size);
    const auto total = users.size() * static_cast<std::size_t>(rounds);
    for (const char* q : {"overview", "analytics", "agents"}) {
        auto f = fill_all(p, q, users, clients, [total](std::size_t i) { return i < total; });
        report((std::string("sidecache ") + q).c_str(), f.ms_each);
        report_watched(f, watched);
        report_slowest(std::move(f));
    }

    // A refresh on another thread (the CLI path); each endpoint's fills
    // meanwhile, in turn, until it ends.
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
    std::vector<fills> during(3);
    const char* queries[] = {"overview", "analytics", "agents"};
    // A few hundred fills per turn, so that every endpoint gets its share:
    // the watched users first, then the next users in turn.
    constexpr std::size_t per_turn = 300;
    std::vector<std::string> turn_users;
    for (std::size_t turn = 0; !done; ++turn) {
        turn_users.clear();
        for (const auto& w : watched) turn_users.push_back(w.first);
        for (std::size_t i = turn_users.size(); i < per_turn; ++i)
            turn_users.push_back(users[(turn * per_turn + i) % users.size()]);
        auto f = fill_all(p, queries[turn % 3], turn_users, clients,
                          [&done](std::size_t i) { return !done && i < per_turn; });
        auto& d = during[turn % 3];
        d.ms_each.insert(d.ms_each.end(), f.ms_each.begin(), f.ms_each.end());
        d.by_user.insert(d.by_user.end(), f.by_user.begin(), f.by_user.end());
    }
    refresher.join();
    std::printf("refresh (REFRESH CONCURRENTLY) took %.0f ms\n", ms(refresh_took));
    for (std::size_t i = 0; i < 3; ++i) {
        report((std::string(queries[i]) + " during the refresh").c_str(), during[i].ms_each);
        report_watched(during[i], watched);
        report_slowest(std::move(during[i]));
    }
    p.stop();
    return 0;
}
