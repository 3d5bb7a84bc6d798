// Invalidation by LISTEN/NOTIFY at the db level: what each payload means,
// what each write to the legacy tables notifies (005_notify.sql), and the
// listener's life: garbled payloads, a terminated backend, stop().
#include "db/fixture.hpp"
#include "db/pg_test_db.ipp"
#include "db/policy.hpp"
#include "db/pool.hpp"
#include "support/stopped_backend.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

using namespace sidecache;
using namespace sidecache::test;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

TEST_CASE("notification payloads: user:<uuid>, all, and everything else garbled [unit]", "[unit]") {
    using kind = db::change::kind;
    using cause = db::change::cause;
    struct row {
        std::string payload;
        kind what;
        cause why;
        std::string user;
    };
    auto r = GENERATE(values<row>({
        {"user:11111111-1111-4111-8111-111111111111", kind::user, cause::notified,
         "11111111-1111-4111-8111-111111111111"},
        {"user:AAAAAAAA-1111-4111-8111-11111111111F", kind::user, cause::notified,
         "aaaaaaaa-1111-4111-8111-11111111111f"},
        {"all", kind::all, cause::notified, ""},
        {"", kind::all, cause::garbled, ""},
        {"garbage", kind::all, cause::garbled, ""},
        {"ALL", kind::all, cause::garbled, ""},
        {"user:", kind::all, cause::garbled, ""},
        {"user:not-a-uuid", kind::all, cause::garbled, ""},
        {"user:11111111-1111-4111-8111-11111111111", kind::all, cause::garbled, ""},
        {"user:11111111-1111-4111-8111-1111111111111", kind::all, cause::garbled, ""},
        {"user:11111111x1111-4111-8111-111111111111", kind::all, cause::garbled, ""},
        {"user:g1111111-1111-4111-8111-111111111111", kind::all, cause::garbled, ""},
        {" user:11111111-1111-4111-8111-111111111111", kind::all, cause::garbled, ""},
        {"agent:11111111-1111-4111-8111-111111111111", kind::agent, cause::notified,
         "11111111-1111-4111-8111-111111111111"},
        {"agent:BBBBBBBB-1111-4111-8111-11111111111F", kind::agent, cause::notified,
         "bbbbbbbb-1111-4111-8111-11111111111f"},
        {"agent:", kind::all, cause::garbled, ""},
        {"agent:not-a-uuid", kind::all, cause::garbled, ""},
        {"agents:11111111-1111-4111-8111-111111111111", kind::all, cause::garbled, ""},
        {"call:11111111-1111-4111-8111-111111111111", kind::all, cause::garbled, ""},
        {"user:11111111-1111-4111-8111-111111111111\n", kind::all, cause::garbled, ""},
        {std::string("user:11111111-1111-4111-8111-1111111111\0"
                     "11",
                     41),
         kind::all, cause::garbled, ""},
        {std::string(8000, 'x'), kind::all, cause::garbled, ""},
    }));
    INFO(r.payload.substr(0, 60));
    auto c = db::parse_notification(r.payload);
    CHECK(c.what == r.what);
    CHECK(c.why == r.why);
    CHECK(c.id == r.user);
}

namespace {

// The changes a pool's listener delivered, for the test thread to wait on.
struct recorder {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<db::change> changes;
    int sentinels = 0;

    db::change_handler handler() {
        return [this](const db::change& c) {
            std::lock_guard lock(mutex);
            changes.push_back(c);
            cv.notify_all();
            return std::size_t{1};
        };
    }

    // Waits until a change matching `pred` arrived (true), or `within` passed.
    template <class Pred>
    bool wait_for(Pred pred, std::chrono::milliseconds within = 5s) {
        std::unique_lock lock(mutex);
        return cv.wait_for(lock, within, [&] {
            for (const auto& c : changes)
                if (pred(c)) return true;
            return false;
        });
    }

    // Runs `write`, then a sentinel NOTIFY; returns what arrived before the
    // sentinel (notifications are delivered in commit order), as
    // "user:<id>" / "all" strings. Empty: the write notified nothing.
    template <class Write>
    std::vector<std::string> after(pg_test_db& db, Write write) {
        const auto sentinel = "ffffffff-ffff-4fff-8fff-" + fmt::format("{:012}", ++sentinels);
        {
            std::lock_guard lock(mutex);
            changes.clear();
        }
        write();
        db.sql("NOTIFY sidecache_invalidate, 'user:" + sentinel + "'");
        bool got = wait_for([&](const db::change& c) { return c.id == sentinel; });
        REQUIRE(got);
        std::lock_guard lock(mutex);
        std::vector<std::string> out;
        for (const auto& c : changes) {
            if (c.id == sentinel) break;
            out.push_back(c.what == db::change::kind::user      ? "user:" + c.id
                          : c.what == db::change::kind::agent   ? "agent:" + c.id
                          : c.why == db::change::cause::garbled ? "garbled"
                                                                : "all");
        }
        return out;
    }
};

conf::database_config listener_config(const pg_test_db& db) {
    conf::database_config cfg;
    cfg.url = db.url();
    cfg.pool_size = 1;
    cfg.queries_dir = source_dir() + "/db/queries";
    cfg.refresh_interval = 0ms;
    cfg.reconnect_backoff_max = 200ms;
    return cfg;
}

using strings = std::vector<std::string>;

}  // namespace

TEST_CASE("each write that changes an answer notifies its user once, others notify nothing [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(fixture_sql);
    recorder rec;
    db::pool p(listener_config(*db));
    p.on_change(rec.handler());
    p.start();
    // The first LISTEN invalidates everything: it may have missed changes.
    REQUIRE(rec.wait_for([](const db::change& c) { return c.why == db::change::cause::connected; }));
    CHECK(p.notify_reason() == "");
    const std::string U1 = "user:" + std::string(u1), U2 = "user:" + std::string(u2),
                      U3 = "user:" + std::string(u3);

    SECTION("users") {
        CHECK(rec.after(*db, [&] { db->sql("UPDATE users SET name = 'renamed', email = email || 'x'"); }) ==
              strings{});
        CHECK(rec.after(*db, [&] {
            db->sql(fmt::format("UPDATE users SET is_active = false WHERE id = '{}'", u1));
        }) == strings{U1});
        CHECK(rec.after(*db,
                        [&] {
                            db->sql(fmt::format(
                                "UPDATE users SET credits = credits - 1 WHERE id IN ('{}', '{}')", u1, u3));
                        })
                  .size() == 2);
        // The legacy's POST /api/calls: a call and the credits, one transaction: one notification.
        CHECK(rec.after(*db, [&] {
            db->sql(
                fmt::format("BEGIN; INSERT INTO calls (id, user_id, agent_id, phone_number, status) VALUES "
                            "(gen_random_uuid(), '{0}', '{1}', '+1', 'completed'); "
                            "UPDATE users SET credits = credits - 3 WHERE id = '{0}'; COMMIT",
                            u1, a1));
        }) == strings{U1});
        CHECK(rec.after(*db, [&] {
            db->sql(
                fmt::format("INSERT INTO users (id, email, name) VALUES "
                            "('44444444-4444-4444-8444-444444444444', 'n', 'n')"));
        }) == strings{});
        // Its agents go by the cascade: each is announced too (in either order).
        auto deleted = rec.after(*db, [&] { db->sql(fmt::format("DELETE FROM users WHERE id = '{}'", u2)); });
        std::sort(deleted.begin(), deleted.end());
        CHECK(deleted == strings{"agent:a0000000-0000-4000-8000-000000000009", U2});
    }
    SECTION("agents") {
        CHECK(rec.after(*db, [&] {
            db->sql(
                fmt::format("INSERT INTO agents (id, user_id, name, agent_type, status) VALUES "
                            "(gen_random_uuid(), '{}', 'n', 'call', 'draft')",
                            u3));
        }) == strings{U3});
        CHECK(rec.after(*db, [&] { db->sql("UPDATE agents SET updated_at = now()"); }) == strings{});
        // An agent changed or deleted: its user's answers, and the agent
        // itself (its cached external configuration; 007_notify_agents.sql).
        CHECK(rec.after(*db, [&] {
            db->sql(fmt::format("UPDATE agents SET name = 'Zed2' WHERE id = '{}'", a1));
        }) == strings{U1, "agent:" + std::string(a1)});
        // Moved to another user: both.
        auto moved = rec.after(
            *db, [&] { db->sql(fmt::format("UPDATE agents SET user_id = '{}' WHERE id = '{}'", u3, a3)); });
        std::sort(moved.begin(), moved.end());
        CHECK(moved == strings{"agent:" + std::string(a3), U1, U3});
        CHECK(rec.after(*db, [&] { db->sql(fmt::format("DELETE FROM agents WHERE id = '{}'", a2)); }) ==
              strings{U1, "agent:" + std::string(a2)});
    }
    SECTION("calls and leads") {
        const char* c1 = "c0000000-0000-4000-8000-000000000001";
        const char* c7 = "c0000000-0000-4000-8000-000000000007";
        CHECK(rec.after(*db, [&] { db->sql("UPDATE calls SET phone_number = '+2'"); }) == strings{});
        CHECK(rec.after(*db, [&] {
            db->sql(fmt::format("UPDATE calls SET status = 'failed' WHERE id = '{}'", c1));
        }) == strings{U1});
        // c0..99 is U2's, the others U1's: one notification per distinct user.
        auto both = rec.after(
            *db, [&] { db->sql("UPDATE calls SET status = 'cancelled' WHERE status = 'completed'"); });
        std::sort(both.begin(), both.end());
        CHECK(both == strings{U1, U2});
        CHECK(rec.after(*db, [&] {
            db->sql("DELETE FROM calls WHERE id = 'c0000000-0000-4000-8000-000000000099'");
        }) == strings{U2});
        CHECK(rec.after(*db, [&] {
            db->sql(
                fmt::format("INSERT INTO lead_analytics (id, call_id, total_score) VALUES "
                            "(gen_random_uuid(), '{}', 75)",
                            c7));
        }) == strings{U1});
        CHECK(rec.after(*db, [&] { db->sql("UPDATE lead_analytics SET created_at = now()"); }) == strings{});
        CHECK(rec.after(*db, [&] {
            db->sql(
                "UPDATE lead_analytics SET total_score = 10 WHERE id = "
                "'d0000000-0000-4000-8000-000000000001'");
        }) == strings{U1});
        CHECK(rec.after(*db, [&] {
            db->sql(
                "DELETE FROM lead_analytics WHERE id = "
                "'d0000000-0000-4000-8000-000000000002'");
        }) == strings{U1});
    }
    SECTION("bulk writes and TRUNCATE notify 'all' once") {
        db->sql("UPDATE sidecache.notify_settings SET bulk_threshold = 1");
        CHECK(rec.after(*db, [&] { db->sql("UPDATE users SET credits = credits + 1"); }) == strings{"all"});
        CHECK(rec.after(*db, [&] { db->sql("TRUNCATE lead_analytics"); }) == strings{"all"});
        // Two agents of one user: the user once, the agents past the threshold as 'all'.
        CHECK(rec.after(*db, [&] {
            db->sql(fmt::format("UPDATE agents SET status = 'paused' WHERE id IN ('{}', '{}')", a1, a3));
        }) == strings{U1, "all"});
    }
    p.stop();
}

TEST_CASE("the listener survives garbled payloads and a terminated backend [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(fixture_sql);
    recorder rec;
    db::pool p(listener_config(*db));
    p.on_change(rec.handler());
    p.start();
    REQUIRE(rec.wait_for([](const db::change& c) { return c.why == db::change::cause::connected; }));

    // Garbled: each counted and handled as "all"; the next valid one still arrives.
    auto garbled = rec.after(*db, [&] {
        db->sql("NOTIFY sidecache_invalidate, 'garbage'");
        db->sql("NOTIFY sidecache_invalidate, 'user:not-a-uuid'");
        db->sql("NOTIFY sidecache_invalidate, 'call:11111111-1111-4111-8111-111111111111'");
        db->sql("SELECT pg_notify('sidecache_invalidate', repeat('x', 7999))");
        db->sql("NOTIFY other_channel, 'user:11111111-1111-4111-8111-111111111111'");  // not ours: never seen
    });
    CHECK(garbled == strings{"garbled", "garbled", "garbled", "garbled"});
    CHECK(p.notify_stats()->garbled == 4);
    CHECK(rec.after(*db, [&] { db->sql(fmt::format("UPDATE users SET credits = 1 WHERE id = '{}'", u3)); }) ==
          strings{"user:" + std::string(u3)});

    // The listening backend is killed: the listener reconnects (one backoff
    // step), invalidates everything once, and notifications flow again.
    auto before = *p.notify_stats();
    REQUIRE(before.backend_pid != 0);
    {
        std::lock_guard lock(rec.mutex);
        rec.changes.clear();
    }
    CHECK(db->sql(fmt::format("SELECT pg_terminate_backend({})", before.backend_pid)) == "t");
    REQUIRE(rec.wait_for([](const db::change& c) { return c.why == db::change::cause::connected; }));
    // Counted just after the catch-up invalidation: poll it, bounded.
    const auto deadline = steady_clock::now() + 5s;
    while (p.notify_stats()->reconnects == before.reconnects && steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    auto after = *p.notify_stats();
    CHECK(after.reconnects == before.reconnects + 1);
    CHECK(after.up);
    CHECK(after.backend_pid != before.backend_pid);
    CHECK(rec.after(*db, [&] { db->sql(fmt::format("UPDATE users SET credits = 2 WHERE id = '{}'", u3)); }) ==
          strings{"user:" + std::string(u3)});

    // Migration 005 missing: still listening, but /ready is told nothing notifies.
    db->sql("DROP TABLE sidecache.notify_settings CASCADE");
    {
        std::lock_guard lock(rec.mutex);
        rec.changes.clear();
    }
    CHECK(db->sql(fmt::format("SELECT pg_terminate_backend({})", after.backend_pid)) == "t");
    REQUIRE(rec.wait_for([](const db::change& c) { return c.why == db::change::cause::connected; }));
    CHECK(p.notify_reason().find("migration 005 is not applied") != std::string::npos);
    p.stop();
    CHECK(!p.notify_stats()->up);
}

TEST_CASE("no listener without database.listen_notify [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    auto cfg = listener_config(*db);
    cfg.listen_notify = false;
    recorder rec;
    db::pool p(cfg);
    p.on_change(rec.handler());
    p.start();
    CHECK_FALSE(p.notify_stats().has_value());
    CHECK(p.notify_reason() == "");
    p.stop();
}

TEST_CASE("migrate writes database.notify_channel for the triggers, a listener on another one says so [pg]",
          "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(fixture_sql);
    conf::config other;
    other.database.url = db->url();
    other.database.migrations_dir = source_dir() + "/db/migrations";
    other.database.notify_channel = "billing_changes";
    REQUIRE(db::run_migrate(other, false) == 0);
    CHECK(db->sql("SELECT channel FROM sidecache.notify_settings") == "billing_changes");

    recorder rec;
    auto cfg = listener_config(*db);
    cfg.notify_channel = "billing_changes";
    {
        db::pool p(cfg);
        p.on_change(rec.handler());
        p.start();
        REQUIRE(rec.wait_for([](const db::change& c) { return c.why == db::change::cause::connected; }));
        CHECK(p.notify_reason() == "");
        {
            std::lock_guard lock(rec.mutex);
            rec.changes.clear();
        }
        db->sql(fmt::format("UPDATE users SET credits = credits + 1 WHERE id = '{}'", u1));
        CHECK(rec.wait_for([](const db::change& c) { return c.id == u1; }));
        p.stop();
    }
    db::pool p(listener_config(*db));  // sidecache_invalidate
    p.on_change(rec.handler());
    p.start();
    REQUIRE(rec.wait_for([](const db::change& c) { return c.why == db::change::cause::connected; }));
    CHECK(p.notify_reason().find("the triggers notify channel billing_changes") != std::string::npos);
    p.stop();
}

TEST_CASE("heartbeat payloads: ours, another listener's, and not one [unit]", "[unit]") {
    using db::heartbeat_of;
    const std::string token = "0123abcd0123abcd";
    CHECK(db::heartbeat_payload(token, 7) == "heartbeat:0123abcd0123abcd:7");
    CHECK(db::classify_heartbeat(db::heartbeat_payload(token, 7), token) == heartbeat_of::ours);
    CHECK(db::classify_heartbeat("heartbeat:ffffffffffffffff:7", token) == heartbeat_of::other);
    // A token that merely starts like ours is another listener's.
    CHECK(db::classify_heartbeat("heartbeat:0123abcd0123abcdff:7", token) == heartbeat_of::other);
    CHECK(db::classify_heartbeat("heartbeat:", token) == heartbeat_of::other);
    CHECK(db::classify_heartbeat("all", token) == heartbeat_of::none);
    CHECK(db::classify_heartbeat("user:11111111-1111-4111-8111-111111111111", token) == heartbeat_of::none);

    const auto t0 = steady_clock::time_point{} + 1h;
    CHECK_FALSE(db::heartbeat_overdue(t0, t0 + 400ms, 200ms));
    CHECK(db::heartbeat_overdue(t0, t0 + 401ms, 200ms));
    CHECK_FALSE(db::heartbeat_overdue(t0, t0 + 24h, 0ms));  // off
}

TEST_CASE("heartbeat payloads: token and sequence number read back, garbled ones refused [unit]", "[unit]") {
    const auto payload = db::heartbeat_payload("0123abcd0123abcd", 42);
    auto h = db::parse_heartbeat(payload);
    REQUIRE(h);
    CHECK(h->token == "0123abcd0123abcd");
    CHECK(h->seq == 42);
    for (const char* bad : {"all", "heartbeat:", "heartbeat:abc", "heartbeat::7", "heartbeat:abc:",
                            "heartbeat:abc:7x", "heartbeat:abc:-1", "heartbeat:abc:99999999999999999999999"})
        CHECK_FALSE(db::parse_heartbeat(bad));
}

namespace {

// The listener's freshness flips, for the test thread to wait on.
struct freshness_recorder {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<bool> flips;

    db::freshness_handler handler() {
        return [this](bool proven) {
            std::lock_guard lock(mutex);
            flips.push_back(proven);
            cv.notify_all();
        };
    }
    bool wait_for(std::size_t count, std::chrono::milliseconds within) {
        std::unique_lock lock(mutex);
        return cv.wait_for(lock, within, [&] { return flips.size() >= count; });
    }
    std::vector<bool> seen() {
        std::lock_guard lock(mutex);
        return flips;
    }
};

// Polls the pool's listener stats until `pred` holds; false at `within`.
template <class Pred>
bool stats_reach(const db::pool& p, Pred pred, std::chrono::milliseconds within = 5s) {
    const auto deadline = steady_clock::now() + within;
    while (!pred(*p.notify_stats())) {
        if (steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

}  // namespace

TEST_CASE("heartbeats come back on the channel, change nothing, and another listener's are ignored [pg]",
          "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(fixture_sql);
    auto cfg = listener_config(*db);
    cfg.heartbeat_interval = 50ms;
    // Two listeners on one channel, as two replicas: each hears the other's heartbeats.
    recorder rec1, rec2;
    freshness_recorder fresh1;
    db::pool p1(cfg), p2(cfg);
    p1.on_change(rec1.handler(), fresh1.handler());
    p2.on_change(rec2.handler());
    p1.start();
    p2.start();
    REQUIRE(rec1.wait_for([](const db::change& c) { return c.why == db::change::cause::connected; }));
    REQUIRE(rec2.wait_for([](const db::change& c) { return c.why == db::change::cause::connected; }));

    auto enough = [](const db::listener_stats& s) {
        return s.heartbeats_received >= 5 && s.foreign_heartbeats >= 3;
    };
    CHECK(stats_reach(p1, enough));
    CHECK(stats_reach(p2, enough));
    // A stranger's heartbeat is not garbled: nothing is delivered before the sentinel.
    CHECK(rec1.after(*db, [&] { db->sql("NOTIFY sidecache_invalidate, 'heartbeat:not-a-token'"); }) ==
          strings{});
    CHECK(rec1.after(*db, [&] {
        db->sql(fmt::format("UPDATE users SET credits = credits + 1 WHERE id = '{}'", u3));
    }) == strings{"user:" + std::string(u3)});
    for (auto* p : {&p1, &p2}) {
        auto s = *p->notify_stats();
        INFO("sent " << s.heartbeats_sent << ", received " << s.heartbeats_received);
        CHECK(s.garbled == 0);
        CHECK(s.all_changes == 0);
        CHECK(s.heartbeats_received <= s.heartbeats_sent);
        CHECK(s.heartbeats_sent >= 5);
        CHECK_FALSE(s.heartbeat_overdue);
        CHECK(s.heartbeat_age_ms >= 0);
        CHECK(s.heartbeat_age_ms < 1000);
    }
    // Only the notifications the test sent count: 2 sentinels + the user's
    // (the stranger's heartbeat is not one). The listener counts a
    // notification just after delivering it, so the recorder can see the last
    // sentinel before its count: wait for the counts, then check them exactly.
    CHECK(stats_reach(p1, [](const db::listener_stats& s) { return s.user_changes >= 3; }));
    CHECK(p1.notify_stats()->notifications == 3);
    CHECK(p1.notify_stats()->user_changes == 3);
    CHECK(p1.notify_stats()->foreign_heartbeats >= 4);
    CHECK(p1.notify_reason() == "");
    CHECK(p1.heartbeat_reason() == "");
    // On time all along: the channel was never unproven.
    CHECK(fresh1.seen().empty());
    p1.stop();
    p2.stop();
}

TEST_CASE("a silently stopped listening backend is found by its heartbeat and replaced at heartbeat_timeout [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(fixture_sql);
    auto cfg = listener_config(*db);
    cfg.heartbeat_interval = 100ms;
    cfg.heartbeat_timeout = 500ms;
    recorder rec;
    freshness_recorder fresh;
    db::pool p(cfg);
    p.on_change(rec.handler(), fresh.handler());
    p.start();
    REQUIRE(rec.wait_for([](const db::change& c) { return c.why == db::change::cause::connected; }));
    REQUIRE(stats_reach(p, [](const db::listener_stats& s) { return s.heartbeats_received >= 2; }));
    const auto before = *p.notify_stats();
    {
        std::lock_guard lock(rec.mutex);
        rec.changes.clear();
    }

    const auto stopped_at = steady_clock::now();
    stopped_backend stopped(before.backend_pid);
    // Two intervals after the last heartbeat came back (at most one interval
    // before the stop), plus scheduling margin.
    REQUIRE(fresh.wait_for(1, 2 * cfg.heartbeat_interval + 300ms));
    const auto noticed_after = steady_clock::now() - stopped_at;
    CHECK(fresh.seen().front() == false);
    WARN("overdue noticed " << std::chrono::duration_cast<std::chrono::milliseconds>(noticed_after).count()
                            << " ms after SIGSTOP (heartbeat_interval 100 ms)");
    // Overdue is not dead yet: the connection is kept until heartbeat_timeout.
    CHECK(p.notify_stats()->up);
    // Replaced: a new backend LISTENs, everything is flushed, then fresh again.
    REQUIRE(rec.wait_for([](const db::change& c) { return c.why == db::change::cause::connected; }));
    CHECK(steady_clock::now() - stopped_at >= cfg.heartbeat_timeout - cfg.heartbeat_interval);
    REQUIRE(fresh.wait_for(2, 5s));
    CHECK(fresh.seen() == std::vector<bool>{false, true});
    CHECK(stats_reach(p, [&](const db::listener_stats& s) {
        return s.reconnects == before.reconnects + 1 && s.up &&
               s.heartbeats_received > before.heartbeats_received;
    }));
    CHECK(p.notify_stats()->backend_pid != before.backend_pid);
    CHECK_FALSE(p.notify_stats()->heartbeat_overdue);
    CHECK(rec.after(*db, [&] {
        db->sql(fmt::format("UPDATE users SET credits = credits + 1 WHERE id = '{}'", u3));
    }) == strings{"user:" + std::string(u3)});
    stopped.resume();
    p.stop();
}
