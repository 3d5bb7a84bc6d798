// sidecache.hour_totals (migration 010) under concurrent writers: a lead
// written while its call moves to another hour, a call deleted while its
// lead's score changes, two calls inserted into one bucket. One transaction
// holds its write open, the other's statement is seen waiting on a lock, the
// first commits: both must succeed (no deadlock) and the table must equal the
// figures recomputed from calls and lead_analytics. Single-writer deltas are
// checked against the legacy in test_equivalence.cpp.
#include "db/pg_test_db.ipp"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <thread>

using namespace sidecache;
using namespace sidecache::test;
using std::chrono::steady_clock;

namespace {

// Calls dated today for one user: X (lead L, score 75), Y and Z without a lead.
constexpr const char* setup_sql = R"SQL(
INSERT INTO users (id, email, name) VALUES ('11111111-1111-4111-8111-111111111111', 'u1@example.com', 'U1');
INSERT INTO agents (id, user_id, name, agent_type, status) VALUES
  ('a0000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', 'A1', 'call', 'active'),
  ('a0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111', 'A2', 'call', 'active');
INSERT INTO calls (id, user_id, agent_id, phone_number, status, duration_minutes, credits_used, created_at)
SELECT v.id::uuid, '11111111-1111-4111-8111-111111111111', 'a0000000-0000-4000-8000-000000000001', '+1',
       'in_progress', 1.5, 2, (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') + v.at::interval
FROM (VALUES ('c0000000-0000-4000-8000-00000000000a', '1 hour'),
             ('c0000000-0000-4000-8000-00000000000b', '2 hours'),
             ('c0000000-0000-4000-8000-00000000000c', '1 hour 30 minutes')) AS v(id, at);
INSERT INTO lead_analytics (id, call_id, total_score)
VALUES ('d0000000-0000-4000-8000-00000000000a', 'c0000000-0000-4000-8000-00000000000a', 75);
)SQL";

// Buckets of hour_totals (hours of today and later, calls > 0) that differ
// from the figures recomputed from the tables, both ways.
constexpr const char* mismatches_sql = R"SQL(
WITH want AS (
  SELECT c.user_id, date_trunc('hour', c.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, c.agent_id,
         count(*) AS calls, count(*) FILTER (WHERE c.status = 'completed') AS completed,
         count(*) FILTER (WHERE c.status = 'failed') AS failed,
         count(*) FILTER (WHERE c.status = 'in_progress') AS in_progress,
         count(*) FILTER (WHERE c.status = 'cancelled') AS cancelled,
         coalesce(sum(c.duration_minutes), 0) AS duration_sum, coalesce(sum(c.credits_used), 0) AS credits_sum,
         count(la.total_score) AS leads, count(*) FILTER (WHERE la.total_score >= 70) AS qualified,
         count(*) FILTER (WHERE la.total_score >= 80) AS hot,
         count(*) FILTER (WHERE la.total_score BETWEEN 50 AND 79) AS warm,
         count(*) FILTER (WHERE la.total_score < 50) AS cold, coalesce(sum(la.total_score), 0) AS score_sum
  FROM calls c LEFT JOIN lead_analytics la ON la.call_id = c.id
  WHERE c.created_at >= (SELECT exact_from FROM sidecache.hour_totals_state)
  GROUP BY 1, 2, 3),
have AS (
  SELECT user_id, hour, agent_id, calls, completed, failed, in_progress, cancelled, duration_sum,
         credits_sum, leads, qualified, hot, warm, cold, score_sum
  FROM sidecache.hour_totals WHERE calls <> 0)
SELECT (SELECT count(*) FROM (SELECT * FROM want EXCEPT SELECT * FROM have) a) +
       (SELECT count(*) FROM (SELECT * FROM have EXCEPT SELECT * FROM want) b)
)SQL";

db::pg_session open_session(pg_test_db& db) {
    auto s = db::pg_session::open(db.url());
    REQUIRE(s.has_value());
    return std::move(*s);
}

std::string first_cell(db::pg_session& s, const std::string& sql) {
    auto rows = s.execute(sql);
    INFO(sql << ": " << s.last_error());
    REQUIRE(rows.has_value());
    REQUIRE_FALSE(rows->empty());
    return rows->at(0).at(0).value_or("NULL");
}

// Waits (deadline 10 s) until backend `pid` waits on a heavyweight lock.
bool waits_on_lock(pg_test_db& db, const std::string& pid) {
    const auto deadline = steady_clock::now() + std::chrono::seconds(10);
    while (steady_clock::now() < deadline) {
        if (db.sql("SELECT coalesce(wait_event_type, '') FROM pg_stat_activity WHERE pid = " + pid) == "Lock")
            return true;
        std::this_thread::yield();
    }
    return false;
}

struct race {
    const char* name;
    const char* holder;  // runs first, in a transaction left open
    const char* waiter;  // runs next on another session and must wait for the holder
};

constexpr const char* move_x =
    "UPDATE calls SET created_at = created_at + interval '4 hours' "
    "WHERE id = 'c0000000-0000-4000-8000-00000000000a'";
constexpr const char* move_y =
    "UPDATE calls SET created_at = created_at + interval '3 hours', agent_id = "
    "'a0000000-0000-4000-8000-000000000002' WHERE id = 'c0000000-0000-4000-8000-00000000000b'";
constexpr const char* score_l =
    "UPDATE lead_analytics SET total_score = 95 WHERE id = 'd0000000-0000-4000-8000-00000000000a'";
constexpr const char* lead_for_y =
    "INSERT INTO lead_analytics (id, call_id, total_score) VALUES "
    "('d0000000-0000-4000-8000-00000000000b', 'c0000000-0000-4000-8000-00000000000b', 40)";
constexpr const char* insert_in_bucket_of_x =
    "INSERT INTO calls (id, user_id, agent_id, phone_number, status, created_at) SELECT gen_random_uuid(), "
    "user_id, agent_id, '+1', 'completed', created_at + interval '1 minute' FROM calls "
    "WHERE id = 'c0000000-0000-4000-8000-00000000000a'";

}  // namespace

TEST_CASE("hour_totals stay exact under concurrent writers of a call and its lead [pg]", "[pg]") {
    auto r = GENERATE(values<race>({
        {"a lead inserted while its call moves", move_y, lead_for_y},
        {"a call moved while its new lead is uncommitted", lead_for_y, move_y},
        {"a lead's score updated while its call moves", move_x, score_l},
        {"a call moved while its lead's score is updated", score_l, move_x},
        {"a lead deleted while its call moves", move_x,
         "DELETE FROM lead_analytics WHERE id = 'd0000000-0000-4000-8000-00000000000a'"},
        {"a call deleted while its lead's score is updated", score_l,
         "DELETE FROM calls WHERE id = 'c0000000-0000-4000-8000-00000000000a'"},
        {"a lead moved to a call that moves", move_y,
         "UPDATE lead_analytics SET call_id = 'c0000000-0000-4000-8000-00000000000b' "
         "WHERE id = 'd0000000-0000-4000-8000-00000000000a'"},
        {"two calls inserted into one bucket", insert_in_bucket_of_x, insert_in_bucket_of_x},
    }));
    INFO(r.name);
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(setup_sql);
    REQUIRE(db->sql(mismatches_sql) == "0");

    auto holder = open_session(*db);
    auto waiter = open_session(*db);
    const auto waiter_pid = first_cell(waiter, "SELECT pg_backend_pid()");
    REQUIRE(holder.execute(std::string("BEGIN; ") + r.holder).has_value());

    std::optional<std::string> waiter_error;
    std::thread t([&] {
        if (!waiter.execute(r.waiter)) waiter_error = waiter.last_error();
    });
    const bool waited = waits_on_lock(*db, waiter_pid);
    auto committed = holder.execute("COMMIT");
    t.join();
    CHECK(waited);
    INFO("holder: " << holder.last_error());
    REQUIRE(committed.has_value());
    INFO("waiter: " << waiter_error.value_or(""));
    REQUIRE_FALSE(waiter_error.has_value());
    CHECK(db->sql(mismatches_sql) == "0");
}
