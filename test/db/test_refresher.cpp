// One refresher per database (docs/freshness.md "The refresher"): the
// decision as a pure function, then pools on one real database: one leader,
// a refresh only when it changes something, counted in sidecache.refresh_log.
#include "db/pg_test_db.ipp"
#include "db/policy.hpp"
#include "db/pool.hpp"
#include "db/run_sync.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <thread>

using namespace sidecache;
using namespace sidecache::test;
using std::chrono::steady_clock;
using db::refresh_reason;

TEST_CASE("refresher: the decision is first, then day, then marks past the threshold, else none [unit]",
          "[unit]") {
    using f = db::refresh_facts;
    CHECK(db::decide_refresh(f{0, false, 0}, 100) == refresh_reason::first);
    CHECK(db::decide_refresh(f{0, true, 500}, 100) == refresh_reason::first);
    CHECK(db::decide_refresh(f{3, true, 0}, 100) == refresh_reason::day);
    CHECK(db::decide_refresh(f{3, true, 500}, 100) == refresh_reason::day);
    CHECK(db::decide_refresh(f{3, false, 100}, 100) == refresh_reason::marks);
    CHECK(db::decide_refresh(f{3, false, 99}, 100) == refresh_reason::none);
    CHECK(db::decide_refresh(f{3, false, 0}, 100) == refresh_reason::none);
    CHECK(db::decide_refresh(f{1, false, 1}, 1) == refresh_reason::marks);
    CHECK(db::to_string(refresh_reason::marks) == "marks");
}

TEST_CASE("refresher: refresh_facts() lines are read, anything else refused [unit]", "[unit]") {
    auto facts = db::parse_refresh_facts("12 1 340");
    REQUIRE(facts.has_value());
    CHECK(facts->logged == 12);
    CHECK(facts->day_moved);
    CHECK(facts->marked_users == 340);
    CHECK_FALSE(db::parse_refresh_facts("0 0 0")->day_moved);
    const auto bad = GENERATE(as<std::string>{}, "", "1 2 3", "1 0", "1 0 3 4", "1  0 3", "-1 0 3", "a 0 3",
                              "1 0 3 ", " 1 0 3");
    INFO("\"" << bad << "\"");
    CHECK_FALSE(db::parse_refresh_facts(bad).has_value());
}

namespace {

constexpr auto interval = std::chrono::milliseconds(200);

conf::database_config refresher_config(const pg_test_db& db) {
    conf::database_config cfg;
    cfg.url = db.url();
    cfg.queries_dir = source_dir() + "/db/queries";
    cfg.listen_notify = false;
    cfg.refresh_interval = interval;
    cfg.refresh_marked_users = 3;
    return cfg;
}

std::unique_ptr<db::pool> started(const conf::database_config& cfg) {
    auto p = std::make_unique<db::pool>(cfg);
    p->start();
    REQUIRE(run_sync(p->wait_ready(steady_clock::now() + std::chrono::seconds(10))));
    return p;
}

// Polls `done` until it holds; fails the test with `what` at the deadline.
void wait_until(const std::function<bool()>& done, const char* what,
                std::chrono::milliseconds within = std::chrono::seconds(10)) {
    const auto until = steady_clock::now() + within;
    while (!done()) {
        INFO("waiting for " << what);
        REQUIRE(steady_clock::now() < until);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

// The leader of `pools` (exactly one must be).
db::pool& leader_of(const std::vector<db::pool*>& pools) {
    db::pool* leader = nullptr;
    wait_until(
        [&] {
            int leaders = 0;
            for (auto* p : pools)
                if (p->refresher().leader) {
                    ++leaders;
                    leader = p;
                }
            REQUIRE(leaders <= 1);
            return leaders == 1;
        },
        "one leader");
    return *leader;
}

// Until the leader has checked `checks` more times and skipped each: the
// intervals in which a refresh would have shown up in the log.
void wait_skipped(db::pool& leader, unsigned long checks) {
    const auto before = leader.refresher().skipped;
    wait_until([&] { return leader.refresher().skipped >= before + checks; }, "the leader's skipped checks");
}

}  // namespace

TEST_CASE("refresher: of two pools on one database one leads and refreshes only when it changes something "
          "[pg]",
          "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    auto logged = [&] { return std::stoi(db->sql("SELECT count(*) FROM sidecache.refresh_log")); };
    auto last_reason = [&] { return db->sql("SELECT reason FROM sidecache.refresh_log ORDER BY id DESC LIMIT 1"); };
    auto mark = [&](int users) {
        db->sql("INSERT INTO sidecache.late_changes (user_id) SELECT gen_random_uuid() FROM generate_series(1, " +
                std::to_string(users) + ")");
    };
    const auto cfg = refresher_config(*db);
    auto a = started(cfg);
    auto b = started(cfg);
    auto& leader = leader_of({a.get(), b.get()});
    auto& other = &leader == a.get() ? *b : *a;

    // The first refresh, once: the later checks find nothing to do.
    wait_until([&] { return logged() >= 1; }, "the first refresh");
    wait_skipped(leader, 3);
    CHECK(logged() == 1);
    CHECK(last_reason() == "first");
    CHECK(leader.refresher().refreshes == 1);  // skipped checks came after it
    CHECK(leader.refresher().last_reason == "first");
    CHECK_FALSE(other.refresher().leader);
    CHECK(other.refresher().refreshes == 0);
    CHECK(other.refresher().skipped == 0);  // it never decides
    CHECK(other.refresher().failures == 0);
    CHECK(db->sql("SELECT boundary = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' "
                  "FROM sidecache.refresh_state") == "t");

    SECTION("marks below the threshold are skipped, at the threshold refreshed once") {
        mark(2);
        wait_skipped(leader, 3);
        CHECK(logged() == 1);
        mark(1);
        wait_until([&] { return logged() == 2; }, "the refresh for the marks");
        CHECK(last_reason() == "marks");
        CHECK(db->sql("SELECT count(*) FROM sidecache.late_changes") == "0");
        wait_skipped(leader, 3);
        CHECK(logged() == 2);
        CHECK(leader.refresher().last_reason == "marks");
    }
    SECTION("the day moved past the boundary: refreshed once") {
        db->sql("UPDATE sidecache.refresh_state SET boundary = boundary - interval '1 day'");
        wait_until([&] { return logged() == 2; }, "the refresh for the day");
        CHECK(last_reason() == "day");
        wait_skipped(leader, 3);
        CHECK(logged() == 2);
    }
    SECTION("the leader stops: the other leads within an interval, a starting pool does not refresh again") {
        leader.stop();
        wait_until([&] { return other.refresher().leader; }, "the other pool to lead", 4 * interval);
        wait_skipped(other, 2);
        CHECK(logged() == 1);  // already refreshed today, no marks: nothing to do
        mark(3);
        wait_until([&] { return logged() == 2; }, "the new leader's refresh", 4 * interval);
        CHECK(last_reason() == "marks");
        // The pool counts it once its COMMIT (which the log shows) has returned.
        wait_until([&] { return other.refresher().refreshes == 1; }, "the new leader's count");
        CHECK(other.refresher().last_reason == "marks");
    }
    SECTION("a request refreshes on any pool, leader or not") {
        other.request_refresh();
        wait_until([&] { return logged() == 2; }, "the requested refresh");
        CHECK(last_reason() == "requested");
        wait_until([&] { return other.refresher().refreshes == 1; }, "the requesting pool's count");
        CHECK(other.refresher().last_reason == "requested");
    }
    a->stop();
    b->stop();
}

TEST_CASE("refresher: without migration 008 the leader counts a failure and keeps serving [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql("DROP FUNCTION sidecache.refresh_facts()");
    auto p = started(refresher_config(*db));
    wait_until([&] { return p->refresher().failures >= 1; }, "a failed check");
    CHECK(p->refresher().last_error.find("refresh_facts") != std::string::npos);
    CHECK(p->refresher().refreshes == 0);
    CHECK(p->ready());
    p->stop();
}

// A restart as the pools see it: every backend of the database terminated.
// The leader's lock went with its session. It is taken again as soon as the
// pools reconnect (for their next fills), not at the next check an hour
// away, and exactly one pool says it leads (the old leader no longer does).
TEST_CASE("refresher: after its backends are terminated, a pool leads again once it reconnects, not at the next "
          "check [pg]",
          "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    auto cfg = refresher_config(*db);
    cfg.refresh_interval = std::chrono::hours(1);
    auto a = started(cfg);
    auto b = started(cfg);
    auto& leader = leader_of({a.get(), b.get()});
    // The first refresh (on a connection of its own) over: nothing in flight.
    wait_until([&] { return leader.refresher().refreshes == 1; }, "the first refresh");
    auto locks_held = [&] {
        // Advisory locks are per database; other tests may run beside this one.
        return db->sql("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                       "WHERE d.datname = current_database() AND locktype = 'advisory' AND classid = 1399742796 "
                       "AND objid = 4 AND granted");
    };
    REQUIRE(locks_held() == "1");

    REQUIRE(db->terminate_others());
    CHECK(locks_held() == "0");
    // Each pool finds its connections closed at its next fill, and reconnects.
    for (auto* p : {a.get(), b.get()})
        (void)run_sync(p->query_json("overview", "00000000-0000-4000-8000-000000000000",
                                     steady_clock::now() + std::chrono::seconds(10)));
    wait_until([&] { return locks_held() == "1"; }, "the leader's lock taken again", std::chrono::seconds(5));
    leader_of({a.get(), b.get()});
    CHECK(a->refresher().failures + b->refresher().failures == 0);
    a->stop();
    b->stop();
}

// PostgreSQL refusing the pool at its start (here: its role may not log in),
// then accepting it: the refresher's start check failed, and it takes its
// turn (leads, and refreshes the never-refreshed views) once the pool
// connects, not at the next check an hour away.
TEST_CASE("refresher: a pool that PostgreSQL refused at start leads and refreshes once it connects [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    const auto role = "sc_refresher_" + std::to_string(::getpid());
    db->sql("DROP ROLE IF EXISTS " + role);
    db->sql("CREATE ROLE " + role + " SUPERUSER NOLOGIN");
    auto cfg = refresher_config(*db);
    const auto at = cfg.url.find("postgres@");
    REQUIRE(at != std::string::npos);
    cfg.url.replace(at, 8, role);
    cfg.refresh_interval = std::chrono::hours(1);
    cfg.reconnect_backoff_max = std::chrono::milliseconds(200);
    db::pool p(cfg);
    p.start();
    wait_until([&] { return p.refresher().failures >= 1; }, "the start check to fail");
    CHECK_FALSE(p.ready());

    db->sql("ALTER ROLE " + role + " LOGIN");
    wait_until([&] { return p.refresher().leader; }, "the pool to lead", std::chrono::seconds(5));
    wait_until([&] { return p.refresher().refreshes == 1; }, "the first refresh", std::chrono::seconds(10));
    CHECK(p.refresher().last_reason == "first");
    CHECK(db->sql("SELECT count(*) FROM sidecache.refresh_log") == "1");
    p.stop();
    db->sql("DROP ROLE " + role);
}
