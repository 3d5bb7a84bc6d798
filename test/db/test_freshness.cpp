// The agents figures stay exact across refreshes and late changes
// (docs/freshness.md), and migrations go up and down without touching the
// legacy tables' data.
#include "db/error.hpp"
#include "db/fixture.hpp"
#include "db/pg_test_db.ipp"
#include "db/pool.hpp"
#include "db/run_sync.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace sidecache;
using namespace sidecache::test;
namespace json = boost::json;
using std::chrono::steady_clock;

namespace {

std::int64_t conversations(db::pool& p, const char* agent) {
    auto r = run_sync(p.query_json("agents", u1, steady_clock::now() + std::chrono::seconds(5)));
    REQUIRE(r.has_value());
    auto body = json::parse(*r);
    for (auto& a : body.at("data").as_array())
        if (a.at("id") == agent) return a.at("performance").at("conversations").to_number<std::int64_t>();
    FAIL("agent not listed");
    return -1;
}

// GET /api/dashboard/analytics's figures for u1: W30's "hot/warm/cold completed", then
// W7's ": leads qualified" (leadsOverTime totals) and "calls" (hourlyDistribution total).
std::string lead_quality(db::pool& p) {
    auto r = run_sync(p.query_json("analytics", u1, steady_clock::now() + std::chrono::seconds(5)));
    REQUIRE(r.has_value());
    auto data = json::parse(*r).at("data");
    auto& d = data.at("leadQualityDistribution").as_array();
    auto n = [](const json::value& v) { return std::to_string(v.to_number<std::int64_t>()); };
    std::int64_t leads = 0, qualified = 0, calls = 0;
    for (auto& day : data.at("leadsOverTime").as_array()) {
        leads += day.at("leads").to_number<std::int64_t>();
        qualified += day.at("qualified").to_number<std::int64_t>();
    }
    for (auto& h : data.at("hourlyDistribution").as_array()) calls += h.to_number<std::int64_t>();
    return n(d.at(0).at("count")) + "/" + n(d.at(1).at("count")) + "/" + n(d.at(2).at("count")) + " " +
           n(data.at("callOutcomes").at("completed")) + ": " + std::to_string(leads) + " " +
           std::to_string(qualified) + " " + std::to_string(calls);
}

// GET /api/dashboard/overview's W30 figures for u1: "calls completed cancelled
// duration credits | leads qualified hot warm cold avgScore".
std::string overview_figures(db::pool& p) {
    auto r = run_sync(p.query_json("overview", u1, steady_clock::now() + std::chrono::seconds(5)));
    REQUIRE(r.has_value());
    auto data = json::parse(*r).at("data");
    auto& c = data.at("conversations");
    auto& l = data.at("leads");
    auto s = [](const json::value& v) {
        return v.is_double() ? fmt::format("{}", v.as_double()) : json::serialize(v);
    };
    return s(c.at("total")) + " " + s(c.at("completed")) + " " + s(c.at("cancelled")) + " " +
           s(c.at("totalDurationMinutes")) + " " + s(data.at("credits").at("usedLast30Days")) + " | " +
           s(l.at("total")) + " " + s(l.at("qualified")) + " " + s(l.at("hot")) + " " + s(l.at("warm")) +
           " " + s(l.at("cold")) + " " + s(l.at("avgScore"));
}

// A pool over `db` whose views refresh only when the test asks.
conf::database_config refreshed_on_request(const pg_test_db& db) {
    conf::database_config cfg;
    cfg.url = db.url();
    cfg.queries_dir = source_dir() + "/db/queries";
    cfg.refresh_interval = std::chrono::milliseconds(0);
    return cfg;
}

void start(db::pool& p) {
    p.start();
    REQUIRE(run_sync(p.wait_ready(steady_clock::now() + std::chrono::seconds(10))));
}

}  // namespace

TEST_CASE("agents performance is exact after late inserts, deletes and refreshes [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(fixture_sql);
    db::pool p(refreshed_on_request(*db));
    start(p);
    REQUIRE(db->refresh() == 0);
    CHECK(conversations(p, a2) == 2);
    CHECK(db->sql("SELECT count(*) FROM sidecache.late_changes") == "0");

    // A call dated three days ago, inserted now: behind the view's boundary.
    db->sql(std::string("INSERT INTO calls (id, user_id, agent_id, phone_number, status, created_at) VALUES "
                        "('c0000000-0000-4000-8000-0000000000a1', '") +
            u1 + "', '" + a2 + "', '+1', 'completed', now() - interval '3 days')");
    CHECK(db->sql("SELECT count(*) FROM sidecache.late_changes") == "1");
    CHECK(conversations(p, a2) == 3);  // read live until the next refresh
    REQUIRE(db->refresh() == 0);
    CHECK(db->sql("SELECT count(*) FROM sidecache.late_changes") == "0");
    CHECK(conversations(p, a2) == 3);  // now from the view

    // Deleting an old call: the view still counts it, the mark makes it live.
    db->sql("DELETE FROM calls WHERE id = 'c0000000-0000-4000-8000-0000000000a1'");
    CHECK(conversations(p, a2) == 2);
    // Moving a call across the boundary (old -> today) marks too.
    db->sql("UPDATE calls SET created_at = now() WHERE id = 'c0000000-0000-4000-8000-000000000003'");
    CHECK(conversations(p, a2) == 2);
    REQUIRE(db->refresh() == 0);
    CHECK(conversations(p, a2) == 2);

    // A call of today needs no mark: the live part reads it.
    db->sql(std::string("INSERT INTO calls (id, user_id, agent_id, phone_number, status, created_at) VALUES "
                        "('c0000000-0000-4000-8000-0000000000a2', '") +
            u1 + "', '" + a2 + "', '+1', 'failed', now())");
    CHECK(db->sql("SELECT count(*) FROM sidecache.late_changes") == "0");
    CHECK(conversations(p, a2) == 3);

    // A refresh asked of the pool runs on its own connection.
    auto before = p.refreshes();
    p.request_refresh();
    for (auto until = steady_clock::now() + std::chrono::seconds(10);
         p.refreshes() == before && steady_clock::now() < until;)
        std::this_thread::yield();
    CHECK(p.refreshes() == before + 1);
    CHECK(conversations(p, a2) == 3);
}

TEST_CASE("analytics figures are exact after late lead writes and refreshes [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(fixture_sql);
    db::pool p(refreshed_on_request(*db));
    start(p);
    // u1's W30: leads 85 (today), 70 (yesterday), 49 (-6 d), 50 (-30 d); calls 4 (-6 d - 1 s)
    // and 7 (future) have none. Completed: calls 1, 3, 7.
    CHECK(lead_quality(p) == "1/2/1 3: 3 2 4");  // never refreshed: all live
    REQUIRE(db->refresh() == 0);
    CHECK(db->sql("SELECT count(*) FROM sidecache.analytics_day_totals") != "0");
    CHECK(lead_quality(p) == "1/2/1 3: 3 2 4");  // the closed days from the view
    CHECK(db->sql("SELECT count(*) FROM sidecache.late_changes") == "0");

    // A lead added now to a call of six days ago (outside W7, inside the view).
    db->sql(
        "INSERT INTO lead_analytics (id, call_id, total_score) VALUES "
        "('d0000000-0000-4000-8000-0000000000b4', 'c0000000-0000-4000-8000-000000000004', 90)");
    CHECK(db->sql("SELECT count(*) FROM sidecache.late_changes") == "1");
    CHECK(lead_quality(p) == "2/2/1 3: 3 2 4");  // read live until the next refresh
    REQUIRE(db->refresh() == 0);
    CHECK(db->sql("SELECT count(*) FROM sidecache.late_changes") == "0");
    CHECK(lead_quality(p) == "2/2/1 3: 3 2 4");  // now from the view

    // An old lead's score changed, another old lead deleted, an old call's status changed.
    db->sql(
        "UPDATE lead_analytics SET total_score = 10 WHERE call_id = 'c0000000-0000-4000-8000-000000000005'");
    CHECK(lead_quality(p) == "2/1/2 3: 3 2 4");
    db->sql("DELETE FROM lead_analytics WHERE call_id = 'c0000000-0000-4000-8000-000000000002'");
    CHECK(lead_quality(p) == "2/0/2 3: 2 1 4");
    db->sql("UPDATE calls SET status = 'completed' WHERE id = 'c0000000-0000-4000-8000-000000000005'");
    CHECK(lead_quality(p) == "2/0/2 4: 2 1 4");
    REQUIRE(db->refresh() == 0);
    CHECK(lead_quality(p) == "2/0/2 4: 2 1 4");

    // A lead of a call dated after today's start needs no mark: that part is read live.
    db->sql(
        "INSERT INTO lead_analytics (id, call_id, total_score) VALUES "
        "('d0000000-0000-4000-8000-0000000000b7', 'c0000000-0000-4000-8000-000000000007', 60)");
    CHECK(db->sql("SELECT count(*) FROM sidecache.late_changes") == "0");
    CHECK(lead_quality(p) == "2/1/2 4: 2 1 4");

    // A closed day inside W7 (the hour and agent views): call 3's lead, six days ago.
    db->sql(
        "UPDATE lead_analytics SET total_score = 75 WHERE call_id = 'c0000000-0000-4000-8000-000000000003'");
    CHECK(db->sql("SELECT string_agg(DISTINCT user_id::text, ',') FROM sidecache.late_changes") == u1);
    CHECK(lead_quality(p) == "2/2/1 4: 2 2 4");
    REQUIRE(db->refresh() == 0);
    CHECK(db->sql("SELECT count(*) FROM sidecache.analytics_hour_totals") != "0");
    CHECK(lead_quality(p) == "2/2/1 4: 2 2 4");
    p.stop();
}

TEST_CASE("overview figures are exact after late call and lead writes and refreshes [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(fixture_sql);
    db::pool p(refreshed_on_request(*db));
    start(p);
    // u1's W30: calls 1, 2, 3, 4, 5 (-30 d, the window's first instant) and 7
    // (future); call 6 (-30 d - 1 s) is outside. Leads 85, 70, 49, 50.
    const std::string before = "6 3 1 8 26 | 4 2 1 2 1 63.5";
    CHECK(overview_figures(p) == before);  // never refreshed: all live
    REQUIRE(db->refresh() == 0);
    CHECK(db->sql("SELECT count(*) FROM sidecache.overview_day_totals WHERE user_id = '" + std::string(u1) +
                  "'") != "0");
    CHECK(overview_figures(p) == before);  // the closed days from the view

    // The window's oldest call completed, re-priced and lengthened; an old lead deleted.
    db->sql(
        "UPDATE calls SET status = 'completed', credits_used = 17, duration_minutes = 4.5 "
        "WHERE id = 'c0000000-0000-4000-8000-000000000005'");
    db->sql("DELETE FROM lead_analytics WHERE call_id = 'c0000000-0000-4000-8000-000000000003'");
    CHECK(db->sql("SELECT string_agg(DISTINCT user_id::text, ',') FROM sidecache.late_changes") == u1);
    const std::string after = "6 4 0 9.5 36 | 3 2 1 2 0 68.33";
    CHECK(overview_figures(p) == after);  // read live until the next refresh
    REQUIRE(db->refresh() == 0);
    CHECK(db->sql("SELECT count(*) FROM sidecache.late_changes") == "0");
    CHECK(overview_figures(p) == after);  // now from the view
    p.stop();
}

TEST_CASE("figures are exact after a TRUNCATE of calls or lead_analytics, before and after a refresh [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(fixture_sql);
    db::pool p(refreshed_on_request(*db));
    start(p);
    REQUIRE(db->refresh() == 0);
    CHECK(lead_quality(p) == "1/2/1 3: 3 2 4");  // the closed days from the views
    CHECK(conversations(p, a2) == 2);

    // No row trigger fires: without 006 the views would still count them.
    db->sql("TRUNCATE lead_analytics");
    CHECK(db->sql("SELECT count(DISTINCT user_id) FROM sidecache.late_changes") ==
          db->sql("SELECT count(*) FROM users"));
    CHECK(lead_quality(p) == "0/0/0 3: 0 0 4");
    // The marks go: today's part is read from hour_totals (010), whose lead
    // figures the TRUNCATE zeroed.
    REQUIRE(db->refresh() == 0);
    CHECK(db->sql("SELECT count(*) FROM sidecache.late_changes") == "0");
    CHECK(lead_quality(p) == "0/0/0 3: 0 0 4");
    db->sql("TRUNCATE calls CASCADE");
    CHECK(lead_quality(p) == "0/0/0 0: 0 0 0");
    CHECK(conversations(p, a2) == 0);
    REQUIRE(db->refresh() == 0);  // the views catch up and the marks go
    CHECK(db->sql("SELECT count(*) FROM sidecache.late_changes") == "0");
    CHECK(lead_quality(p) == "0/0/0 0: 0 0 0");
    CHECK(conversations(p, a2) == 0);
    p.stop();
}

TEST_CASE("migrate: idempotent up, down removes everything, legacy data untouched [pg]", "[pg]") {
    auto db = pg_test_db::create(false);
    if (!db) return;
    db->sql(fixture_sql);
    auto digest = [&] {
        return db->sql(
            "SELECT md5(string_agg(x, ',' ORDER BY x)) FROM ("
            " SELECT row(u.*)::text x FROM users u UNION ALL SELECT row(a.*)::text FROM agents a"
            " UNION ALL SELECT row(c.*)::text FROM calls c UNION ALL SELECT row(l.*)::text FROM "
            "lead_analytics l) s");
    };
    auto columns = [&] {
        return db->sql(
            "SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY "
            "table_name, ordinal_position)"
            " FROM information_schema.columns WHERE table_schema = 'public'");
    };
    auto data = digest();
    auto cols = columns();
    REQUIRE(db->migrate(false) == 0);
    CHECK(db->sql("SELECT count(*) FROM sidecache.schema_migrations") == "10");
    CHECK(db->sql("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'sidecache\\_%'") == "3");
    CHECK(db->sql("SELECT bool_and(indisvalid)::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                  " WHERE c.relname LIKE 'sidecache\\_%'") == "true");
    // 005: a notify trigger per write of each legacy table, notifying the default channel.
    CHECK(db->sql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'sidecache\\_%\\_notify\\_%'") == "15");
    CHECK(db->sql("SELECT channel FROM sidecache.notify_settings") == "sidecache_invalidate");
    // 006: TRUNCATE of calls and lead_analytics marks every user.
    CHECK(db->sql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'sidecache\\_%\\_late\\_truncate'") ==
          "2");
    // 007: the agents' triggers also name the agent.
    CHECK(db->sql("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                  " WHERE n.nspname = 'sidecache' AND p.proname = 'notify_agents'") == "1");
    // 010: hour_totals' triggers, four on each table (a BEFORE DELETE row trigger on calls).
    CHECK(db->sql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'sidecache\\_%\\_hours\\_%'") == "9");
    // 008: the refresher's log and facts.
    CHECK(db->sql("SELECT sidecache.refresh_facts()") == "0 1 0");
    REQUIRE(db->refresh() == 0);
    CHECK(db->sql("SELECT reason || ' ' || array_length(views, 1) FROM sidecache.refresh_log") == "command 5");
    CHECK(db->sql("SELECT sidecache.refresh_facts()") == "1 0 0");
    REQUIRE(db->migrate(false) == 0);  // again: nothing to do, nothing fails
    CHECK(db->sql("SELECT count(*) FROM sidecache.schema_migrations") == "10");
    REQUIRE(db->refresh() == 0);
    CHECK(digest() == data);
    CHECK(columns() == cols);

    REQUIRE(db->migrate(true) == 0);
    CHECK(db->sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'sidecache'") == "0");
    CHECK(db->sql("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'sidecache\\_%'") == "0");
    CHECK(db->sql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'sidecache\\_%'") == "0");
    CHECK(db->sql("SELECT count(*) FROM pg_proc WHERE proname IN ('leads_mark_late', 'refresh_views', "
                  "'refresh_facts', 'refresh_views_logged')") == "0");
    CHECK(db->sql("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                  " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
                  " AND (n.nspname = 'sidecache' OR p.proname LIKE '%\\_notify%')") == "0");
    CHECK(digest() == data);
    CHECK(columns() == cols);
    REQUIRE(db->migrate(false) == 0);  // and up again from nothing
    CHECK(db->sql("SELECT count(*) FROM sidecache.schema_migrations") == "10");
}
