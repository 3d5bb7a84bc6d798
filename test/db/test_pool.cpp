// The pool when PostgreSQL is down or slow: sidecache keeps serving (the
// caller falls back), statements past their deadline are cancelled.
#include "db/error.hpp"
#include "db/pg_test_db.ipp"
#include "db/policy.hpp"
#include "db/pool.hpp"
#include "db/run_sync.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

using namespace sidecache;
using namespace sidecache::test;
using namespace std::chrono_literals;
using std::chrono::steady_clock;
namespace net = boost::asio;

namespace {

// A queries_dir of the given files (name, SQL) for a test, removed after it.
struct query_files {
    std::filesystem::path dir;

    query_files(const std::string& name, std::initializer_list<std::pair<const char*, const char*>> files)
        : dir(std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()))) {
        std::filesystem::create_directories(dir);
        for (const auto& [file, sql] : files) std::ofstream(dir / file) << sql;
    }
    ~query_files() { std::filesystem::remove_all(dir); }
};

// One connection running `queries`' statements, no view refresher.
conf::database_config one_connection(const pg_test_db& db, const query_files& queries) {
    conf::database_config cfg;
    cfg.url = db.url();
    cfg.pool_size = 1;
    cfg.queries_dir = queries.dir.string();
    cfg.refresh_interval = 0ms;
    return cfg;
}

// Takes the advisory lock `key` in a transaction of `holder` (opened on
// `db` if empty): statements that take it shared then wait on it as
// `active` backends (wait_event_type Lock) until the holder's COMMIT.
void hold_advisory_lock(pg_test_db& db, std::optional<db::pg_session>& holder, int key) {
    if (!holder) {
        auto opened = db::pg_session::open(db.url());
        REQUIRE(opened.has_value());
        holder.emplace(std::move(*opened));
    }
    REQUIRE(holder->execute("BEGIN").has_value());
    REQUIRE(holder->execute("SELECT pg_advisory_xact_lock(" + std::to_string(key) + ")").has_value());
}

}  // namespace

TEST_CASE("reconnect backoff doubles from 100 ms up to the cap [unit]", "[unit]") {
    CHECK(db::reconnect_backoff(1, 10'000ms) == 100ms);
    CHECK(db::reconnect_backoff(2, 10'000ms) == 200ms);
    CHECK(db::reconnect_backoff(5, 10'000ms) == 1'600ms);
    CHECK(db::reconnect_backoff(8, 10'000ms) == 10'000ms);
    CHECK(db::reconnect_backoff(1000, 10'000ms) == 10'000ms);
    CHECK(db::reconnect_backoff(3, 300ms) == 300ms);
}

TEST_CASE("views refresh on the interval or just after UTC midnight [unit]", "[unit]") {
    using namespace std::chrono;
    auto midnight = sys_days{year{2026} / 11 / 28};
    auto evening = midnight + 23h + 58min;
    CHECK(db::next_refresh_at(midnight + 10h, 5min) == midnight + 10h + 5min);
    CHECK(db::next_refresh_at(evening, 5min) == midnight + 24h + 1s);  // the date rolls over first
    CHECK(db::next_refresh_at(midnight + 1h, 0ms) == midnight + 24h + 1s);
}

TEST_CASE("db errors have their own category and messages [unit]", "[unit]") {
    boost::system::error_code ec = db::error::no_such_user;
    CHECK(std::string(ec.category().name()) == "sidecache.db");
    CHECK(ec.message() == "no such active user");
    CHECK(ec != boost::system::error_code(db::error::timeout));
}

TEST_CASE("PostgreSQL down: the pool starts, says why, fails fast [integration]", "[integration]") {
    // A port nobody listens on: bind one, read it back, close it.
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    auto port = a.local_endpoint().port();
    a.close();
    conf::database_config cfg;
    cfg.url = "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/x";
    cfg.queries_dir = source_dir() + "/db/queries";
    db::pool p(cfg);
    p.start();
    CHECK_FALSE(run_sync(p.wait_ready(steady_clock::now() + 300ms)));
    CHECK_FALSE(p.ready());
    CHECK(p.reason().find("postgresql") != std::string::npos);
    // Never connected: no reconnection to wait for (reconnect_wait is for a
    // pool that just lost its connections), the caller falls back at once.
    auto t0 = steady_clock::now();
    auto r = run_sync(p.query_json("overview", "11111111-1111-4111-8111-111111111111", t0 + 5s));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == db::error::not_ready);
    CHECK(steady_clock::now() - t0 < 100ms);
    CHECK(p.stats().reconnect_waits == 0);
    p.stop();

    db::pool none(conf::database_config{});
    CHECK_FALSE(none.ready());
    CHECK(run_sync(none.query_json("overview", "x", steady_clock::now() + 1s)).error() ==
          db::error::not_configured);
}

TEST_CASE("a statement past its deadline or query_timeout is cancelled, the connection reused [pg]", "[pg]") {
    auto db = pg_test_db::create(false);
    if (!db) return;
    const query_files queries("sc_db_queries", {{"slow.sql", "SELECT $1 || pg_sleep(30)::text"},
                                                {"echo.sql", "SELECT '{\"user\":\"' || $1 || '\"}';\n"}});
    auto cfg = one_connection(*db, queries);
    db::pool p(cfg);
    p.start();
    REQUIRE(run_sync(p.wait_ready(steady_clock::now() + 10s)));

    auto t0 = steady_clock::now();
    auto slow = run_sync(p.query_json("slow", "x", t0 + 200ms));
    auto took = steady_clock::now() - t0;
    REQUIRE_FALSE(slow.has_value());
    CHECK(slow.error() == db::error::timeout);
    CHECK(took >= 200ms);
    CHECK(took < 2s);  // PQcancel stopped the 30 s sleep
    // Counted as a statement timeout, not as a wait for a connection.
    CHECK(p.stats().errors == 1);
    CHECK(p.stats().statement_timeouts == 1);
    CHECK(p.stats().queue_timeouts == 0);
    CHECK(db->sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND state = "
                  "'active' AND pid <> pg_backend_pid()") == "0");
    // The one connection is clean again.
    auto echo = run_sync(p.query_json("echo", "u1", steady_clock::now() + 5s));
    REQUIRE(echo.has_value());
    CHECK(*echo == "{\"user\":\"u1\"}");
    p.stop();

    // database.query_timeout ends the statement long before a later caller's deadline.
    cfg.query_timeout = 200ms;
    db::pool bounded(cfg);
    bounded.start();
    REQUIRE(run_sync(bounded.wait_ready(steady_clock::now() + 10s)));
    t0 = steady_clock::now();
    slow = run_sync(bounded.query_json("slow", "x", t0 + 20s));
    took = steady_clock::now() - t0;
    REQUIRE_FALSE(slow.has_value());
    CHECK(slow.error() == db::error::timeout);
    CHECK(took >= 200ms);
    CHECK(took < 2s);
    echo = run_sync(bounded.query_json("echo", "u2", steady_clock::now() + 5s));
    REQUIRE(echo.has_value());
    CHECK(*echo == "{\"user\":\"u2\"}");
    CHECK(bounded.stats().statement_timeouts == 1);
    bounded.stop();
}

namespace {

// One query of a hand-over test: started `after` the test's start.
struct queued {
    std::string query, user;
    db::query_priority priority;
    std::chrono::milliseconds after;
};

// Runs `queries` against a one-connection pool whose statements are
// hold.sql (0.3 s) and echo.sql; returns the users in the order their
// queries finished.
std::vector<std::string> finishing_order(const pg_test_db& db, const std::vector<queued>& queries) {
    const query_files files("sc_db_handover",
                            {{"hold.sql", "SELECT $1 || pg_sleep(0.3)::text"}, {"echo.sql", "SELECT $1"}});
    db::pool p(one_connection(db, files));
    p.start();
    REQUIRE(run_sync(p.wait_ready(steady_clock::now() + 10s)));
    net::io_context ioc;
    std::vector<std::string> order;
    auto run = [&](queued q) -> net::awaitable<void> {
        net::steady_timer t(co_await net::this_coro::executor, q.after);
        co_await t.async_wait(net::use_awaitable);
        auto r = co_await p.query_json(q.query, q.user, steady_clock::now() + 10s, q.priority);
        order.push_back(r ? q.user : "error");
    };
    for (const auto& q : queries) net::co_spawn(ioc, run(q), net::detached);
    ioc.run();
    p.stop();
    return order;
}

constexpr auto fg = db::query_priority::foreground, bg = db::query_priority::background;

}  // namespace

TEST_CASE("a foreground query gets the next free connection before background ones queued earlier [pg]",
          "[pg]") {
    auto db = pg_test_db::create(false);
    if (!db) return;
    // The one connection is held; two background refills queue, then a
    // client's fill: it runs first when the connection comes back.
    auto order = finishing_order(*db, {{"hold", "holder", fg, 0ms},
                                       {"echo", "refill 1", bg, 50ms},
                                       {"echo", "refill 2", bg, 60ms},
                                       {"echo", "client", fg, 100ms}});
    CHECK(order == std::vector<std::string>{"holder", "client", "refill 1", "refill 2"});
}

TEST_CASE("steady foreground queries do not starve a background one: it gets one hand-over in four [pg]",
          "[pg]") {
    auto db = pg_test_db::create(false);
    if (!db) return;
    // The one connection is held; a refill queues, then six client fills.
    std::vector<queued> queries{{"hold", "holder", fg, 0ms}, {"echo", "refill", bg, 50ms}};
    for (int i = 1; i <= 6; ++i)
        queries.push_back({"echo", "client " + std::to_string(i), fg, 100ms + i * 5ms});
    CHECK(finishing_order(*db, queries) == std::vector<std::string>{"holder", "client 1", "client 2",
                                                                    "client 3", "refill", "client 4",
                                                                    "client 5", "client 6"});
}

TEST_CASE("a statement whose backend is terminated under it runs again on a new connection, once [pg]", "[pg]") {
    auto db = pg_test_db::create(false);
    if (!db) return;
    // An advisory lock, not a table's: a new connection's PREPARE must not
    // wait on it, only the statement's execution.
    const query_files queries(
        "sc_db_locked",
        {{"locked.sql",
          "SELECT '{\"pid\":' || pg_backend_pid() || ',\"user\":\"' || $1 || '\"}' "
          "FROM (SELECT pg_advisory_xact_lock_shared(424242)) AS l"}});
    auto cfg = one_connection(*db, queries);
    cfg.query_timeout = 30s;  // the kill, not a timeout, must end the statement
    db::pool p(cfg);
    p.start();
    REQUIRE(run_sync(p.wait_ready(steady_clock::now() + 10s)));
    const auto first = run_sync(p.query_json("locked", "u0", steady_clock::now() + 5s));
    REQUIRE(first.has_value());

    // Another session holds the lock: the pool's statement waits on it,
    // an `active` backend, until that backend is terminated.
    std::optional<db::pg_session> holder;
    hold_advisory_lock(*db, holder, 424242);
    auto blocked = std::async(std::launch::async,
                              [&] { return run_sync(p.query_json("locked", "u1", steady_clock::now() + 30s)); });
    auto waiting_pid = [&db] {
        return db->sql("SELECT pid FROM pg_stat_activity WHERE state = 'active' AND wait_event_type = 'Lock' "
                       "AND query LIKE '%424242%' AND pid <> pg_backend_pid()");
    };
    std::string pid;
    const auto waiting_by = steady_clock::now() + 10s;
    while (pid.empty() && steady_clock::now() < waiting_by) pid = waiting_pid();
    REQUIRE_FALSE(pid.empty());
    CHECK(db->sql("SELECT pg_terminate_backend(" + pid + ")") == "t");

    // Not an error for the caller: the pool reconnects (its only connection
    // gone, the query waits up to reconnect_wait for the new one) and runs the
    // statement again there, where it waits on the lock in turn.
    std::string again;
    const auto again_by = steady_clock::now() + 10s;
    while ((again.empty() || again == pid) && steady_clock::now() < again_by) again = waiting_pid();
    REQUIRE_FALSE(again.empty());
    CHECK(again != pid);
    CHECK(blocked.wait_for(0s) == std::future_status::timeout);

    // The lock released, the caller gets the new backend's answer.
    REQUIRE(holder->execute("COMMIT").has_value());
    REQUIRE(blocked.wait_for(5s) == std::future_status::ready);
    const auto answer = blocked.get();
    REQUIRE(answer.has_value());
    CHECK(answer->find("\"user\":\"u1\"") != std::string::npos);
    CHECK(answer->find("\"pid\":" + again + ",") != std::string::npos);
    CHECK(p.stats().retries == 1);
    CHECK(p.stats().errors == 0);

    // Once only: the retried statement's backend terminated too, the caller
    // hears of it at once (not at its 30 s deadline) and falls back.
    hold_advisory_lock(*db, holder, 424242);
    auto twice = std::async(std::launch::async,
                            [&] { return run_sync(p.query_json("locked", "u2", steady_clock::now() + 30s)); });
    for (int kill = 0; kill < 2; ++kill) {
        std::string victim;
        const auto by = steady_clock::now() + 10s;
        while ((victim.empty() || victim == pid) && steady_clock::now() < by) victim = waiting_pid();
        REQUIRE_FALSE(victim.empty());
        CHECK(db->sql("SELECT pg_terminate_backend(" + victim + ")") == "t");
        pid = victim;
    }
    const auto killed = steady_clock::now();
    REQUIRE(twice.wait_for(5s) == std::future_status::ready);
    CHECK(steady_clock::now() - killed < 2s);
    const auto lost = twice.get();
    REQUIRE_FALSE(lost.has_value());
    CHECK(lost.error() == db::error::connection_failed);
    CHECK(p.stats().retries == 2);
    CHECK(p.stats().errors == 1);
    REQUIRE(holder->execute("COMMIT").has_value());
    p.stop();
}

TEST_CASE("a statement runs again on every connection older than it that dies under it, as in a restart [pg]",
          "[pg]") {
    // A restart closes every connection within milliseconds: the idle ones
    // may still look open when a statement is sent on them. Each one older
    // than the statement that dies under it is dropped and the statement runs
    // again, until a new connection answers.
    auto db = pg_test_db::create(false);
    if (!db) return;
    const query_files queries(
        "sc_db_restart_race",
        {{"locked.sql", "SELECT '{\"pid\":' || pg_backend_pid() || ',\"user\":\"' || $1 || '\"}' "
                        "FROM (SELECT pg_advisory_xact_lock_shared(434343)) AS l"}});
    // Its own role, so that new connections can be refused while the old
    // ones die, as during a restart.
    const auto role = "sc_race_" + std::to_string(::getpid());
    db->sql("DROP ROLE IF EXISTS " + role);
    db->sql("CREATE ROLE " + role + " LOGIN");
    auto cfg = one_connection(*db, queries);
    const auto at = cfg.url.find("postgres@");
    REQUIRE(at != std::string::npos);
    cfg.url.replace(at, 8, role);
    cfg.pool_size = 3;
    cfg.query_timeout = 30s;
    cfg.reconnect_wait = 20s;
    db::pool p(cfg);
    p.start();
    const auto all_up = steady_clock::now() + 10s;
    while (p.stats().connections < 3 && steady_clock::now() < all_up) {
    }
    REQUIRE(p.stats().connections == 3);

    std::optional<db::pg_session> holder;
    hold_advisory_lock(*db, holder, 434343);
    auto blocked = std::async(std::launch::async,
                              [&] { return run_sync(p.query_json("locked", "u1", steady_clock::now() + 30s)); });
    // No new connection from now on; kills the backend running the
    // statement, three times: the pool's three connections, all older than it.
    db->sql("ALTER ROLE " + role + " NOLOGIN");
    std::vector<std::string> killed;
    for (int kill = 0; kill < 3; ++kill) {
        std::string victim;
        const auto by = steady_clock::now() + 10s;
        while (steady_clock::now() < by) {
            victim = db->sql("SELECT pid FROM pg_stat_activity WHERE state = 'active' AND wait_event_type = "
                             "'Lock' AND query LIKE '%434343%' AND pid <> pg_backend_pid()");
            if (!victim.empty() && std::find(killed.begin(), killed.end(), victim) == killed.end()) break;
            victim.clear();
        }
        REQUIRE_FALSE(victim.empty());
        REQUIRE(db->terminate(victim));
        killed.push_back(victim);
    }
    // Then it waits for a new connection (the pool has none), runs there
    // (waiting on the lock again) and answers from it.
    CHECK(blocked.wait_for(200ms) == std::future_status::timeout);
    CHECK(p.stats().connections == 0);
    db->sql("ALTER ROLE " + role + " LOGIN");
    REQUIRE(holder->execute("COMMIT").has_value());
    REQUIRE(blocked.wait_for(10s) == std::future_status::ready);
    const auto answer = blocked.get();
    REQUIRE(answer.has_value());
    CHECK(answer->find("\"user\":\"u1\"") != std::string::npos);
    for (const auto& pid : killed) CHECK(answer->find("\"pid\":" + pid + ",") == std::string::npos);
    CHECK(p.stats().retries == 3);
    CHECK(p.stats().errors == 0);
    p.stop();
    db->sql("DROP ROLE " + role);
}

TEST_CASE("a connection the server closed while idle is never used: the query waits for the new one [pg]", "[pg]") {
    // What a PostgreSQL restart does to a pool between two fills: every idle
    // backend is terminated. The next query must not be sent on a dead
    // connection (an error, then a fallback to a legacy that reads the same
    // restarting database), but wait for the reconnection.
    auto db = pg_test_db::create(false);
    if (!db) return;
    const query_files queries("sc_db_idle_closed",
                              {{"pid.sql", "SELECT '{\"pid\":' || pg_backend_pid() || ',\"user\":\"' || $1 || '\"}'"}});
    auto cfg = one_connection(*db, queries);
    cfg.reconnect_wait = 5s;
    // Starts `pool`, asks for its one connection's backend: its pid.
    auto backend_of = [](db::pool& pool) {
        pool.start();
        REQUIRE(run_sync(pool.wait_ready(steady_clock::now() + 10s)));
        const auto answer = run_sync(pool.query_json("pid", "u0", steady_clock::now() + 5s));
        REQUIRE(answer.has_value());
        return answer->substr(7, answer->find(',') - 7);
    };
    db::pool p(cfg);
    const auto pid = backend_of(p);
    REQUIRE(db->terminate(pid));

    const auto next = run_sync(p.query_json("pid", "u1", steady_clock::now() + 10s));
    REQUIRE(next.has_value());
    CHECK(next->find("\"user\":\"u1\"") != std::string::npos);
    CHECK(next->find("\"pid\":" + pid + ",") == std::string::npos);
    CHECK(p.stats().errors == 0);
    CHECK(p.stats().retries == 0);  // never sent on the dead connection
    CHECK(p.stats().reconnect_waits == 1);
    p.stop();

    // reconnect_wait 0: the lost pool fails the query at once (the caller
    // falls back), still without sending it on the dead connection.
    cfg.reconnect_wait = 0ms;
    db::pool at_once(cfg);
    REQUIRE(db->terminate(backend_of(at_once)));
    const auto t0 = steady_clock::now();
    const auto refused = run_sync(at_once.query_json("pid", "u3", t0 + 10s));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == db::error::not_ready);
    CHECK(steady_clock::now() - t0 < 100ms);
    CHECK(at_once.stats().retries == 0);
    CHECK(at_once.stats().reconnect_waits == 0);
    at_once.stop();
}
