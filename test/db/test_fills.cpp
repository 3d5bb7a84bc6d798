// The three fills against a hand-made dataset (fixture.hpp), figure by figure
// as api.md defines them, through db::pool::query_json: the bytes a user gets.
#include "db/error.hpp"
#include "db/fixture.hpp"
#include "db/pg_test_db.ipp"
#include "db/pool.hpp"
#include "db/run_sync.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <array>
#include <chrono>
#include <string>

using namespace sidecache;
using namespace sidecache::test;
namespace json = boost::json;
using std::chrono::steady_clock;

namespace {

conf::database_config db_config(const std::string& url) {
    conf::database_config c;
    c.url = url;
    c.pool_size = 2;
    c.queries_dir = source_dir() + "/db/queries";
    c.refresh_interval = std::chrono::milliseconds(0);
    return c;
}

struct started_pool {
    explicit started_pool(const std::string& url) : p(db_config(url)) {
        p.start();
        REQUIRE(run_sync(p.wait_ready(steady_clock::now() + std::chrono::seconds(10))));
    }
    boost::system::result<std::string> fill(const char* name, const std::string& user) {
        return run_sync(p.query_json(name, user, steady_clock::now() + std::chrono::seconds(5)));
    }
    json::value data(const char* name, const std::string& user) {
        auto r = fill(name, user);
        INFO(name << " for " << user << ": " << (r ? "" : r.error().message()));
        REQUIRE(r.has_value());
        auto v = json::parse(*r);
        REQUIRE(v.at("success") == true);
        return v.at("data");
    }
    db::pool p;
};

// The ISO text of T + offset (T = the current UTC midnight), as toISOString().
std::string iso_from_midnight(std::chrono::seconds offset) {
    using namespace std::chrono;
    auto t = floor<days>(system_clock::now()) + offset;
    auto day = floor<days>(t);
    year_month_day ymd{day};
    hh_mm_ss hms{floor<milliseconds>(t - day)};
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                       static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                       hms.hours().count(), hms.minutes().count(), hms.seconds().count(),
                       hms.subseconds().count());
}

// Credits of the fixture's calls dated in the current UTC month.
std::int64_t credits_this_month() {
    using namespace std::chrono;
    year_month_day today{floor<days>(system_clock::now())};
    int into_month = static_cast<int>(static_cast<unsigned>(today.day())) - 1;  // days since the 1st
    struct {
        int day_offset;
        int credits;
    } calls[] = {{0, 10}, {-1, 5}, {-6, 3}, {-7, 0}, {-30, 7}, {-31, 100}, {2, 1}};
    std::int64_t sum = 0;
    for (auto c : calls)
        if (c.day_offset >= -into_month) sum += c.credits;
    return sum;
}

std::string str(const json::value& v) {
    return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

double num(const json::value& v) {
    return v.is_double() ? v.as_double() : static_cast<double>(v.to_number<std::int64_t>());
}

}  // namespace

TEST_CASE("overview: every figure of the hand-made dataset [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(fixture_sql);
    started_pool pool(db->url());
    auto d = pool.data("overview", u1);

    auto kpi = [&](int i) { return d.at("kpis").at(i); };
    CHECK(kpi(0).at("id") == "total_leads");
    CHECK(num(kpi(0).at("value")) == 4);  // c1 c2 c3 c5; c6's lead is outside W30
    CHECK(num(kpi(1).at("value")) == 6);  // W30 includes T-30d 00:00:00 and the future call
    CHECK(num(kpi(2).at("value")) == 2);  // 85, 70
    CHECK(num(kpi(3).at("value")) == 50);
    CHECK(num(kpi(4).at("value")) == 0.01);  // 6/720 = 0.0083 -> 0.01
    CHECK(num(kpi(5).at("value")) == 63.5);  // 254/4
    CHECK(num(kpi(6).at("value")) == 50);    // 3 completed of 6
    CHECK(kpi(6).at("id") == "call_success_rate");
    CHECK(kpi(3).at("unit") == "percent");

    CHECK(num(d.at("credits").at("current")) == 1000);
    CHECK(num(d.at("credits").at("usedLast30Days")) == 26);
    CHECK(num(d.at("credits").at("usedThisMonth")) == credits_this_month());

    auto& ag = d.at("agents");
    CHECK((num(ag.at("total")) == 3 && num(ag.at("active")) == 1 && num(ag.at("draft")) == 1 &&
           num(ag.at("paused")) == 1));
    auto& cv = d.at("conversations");
    CHECK(num(cv.at("total")) == 6);
    CHECK(num(cv.at("completed")) == 3);
    CHECK(num(cv.at("failed")) == 1);
    CHECK(num(cv.at("inProgress")) == 1);
    CHECK(num(cv.at("cancelled")) == 1);
    CHECK(num(cv.at("totalDurationMinutes")) == 8);
    CHECK(num(cv.at("avgDurationMinutes")) == 1.33);
    auto& ld = d.at("leads");
    CHECK((num(ld.at("total")) == 4 && num(ld.at("qualified")) == 2 && num(ld.at("hot")) == 1 &&
           num(ld.at("warm")) == 2 && num(ld.at("cold")) == 1 && num(ld.at("avgScore")) == 63.5));

    auto& recent = d.at("recentActivity").as_array();
    REQUIRE(recent.size() == 4);  // W7 starts at T-6d 00:00:00: c4 (1 s before) is out
    CHECK(recent[0].at("callId") == "c0000000-0000-4000-8000-000000000007");
    CHECK(recent[0].at("leadScore").is_null());
    CHECK(recent[0].at("agentName") == "Beta");
    CHECK(recent[1].at("callId") == "c0000000-0000-4000-8000-000000000001");
    CHECK(num(recent[1].at("durationMinutes")) == 1.25);
    CHECK(num(recent[1].at("leadScore")) == 85);
    CHECK(str(recent[1].at("createdAt")) == iso_from_midnight(std::chrono::hours(1)));
    CHECK(recent[2].at("callId") == "c0000000-0000-4000-8000-000000000002");
    CHECK(recent[3].at("callId") == "c0000000-0000-4000-8000-000000000003");
    CHECK(d.at("cacheInfo").at("cached") == false);
    CHECK(d.at("cacheInfo").at("calculatedAt").as_string().size() == 24);
}

TEST_CASE("analytics: every figure of the hand-made dataset [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(fixture_sql);
    started_pool pool(db->url());
    auto d = pool.data("analytics", u1);

    auto& days = d.at("leadsOverTime").as_array();
    REQUIRE(days.size() == 7);
    CHECK(str(days[0].at("date")) == iso_from_midnight(std::chrono::days(-6)).substr(0, 10));
    CHECK(str(days[6].at("date")) == iso_from_midnight(std::chrono::days(0)).substr(0, 10));
    auto point = [&](int i) {
        return std::array<double, 3>{num(days[i].at("calls")), num(days[i].at("leads")),
                                     num(days[i].at("qualified"))};
    };
    CHECK(point(0) == std::array<double, 3>{1, 1, 0});  // c3 at T-6d 00:00, lead 49
    CHECK(point(1) == std::array<double, 3>{0, 0, 0});
    CHECK(point(5) == std::array<double, 3>{1, 1, 1});  // c2
    CHECK(point(6) == std::array<double, 3>{1, 1, 1});  // c1; c7 (future) in no point

    auto& q = d.at("leadQualityDistribution").as_array();
    CHECK((q[0].at("label") == "hot" && num(q[0].at("count")) == 1));
    CHECK((q[1].at("label") == "warm" && num(q[1].at("count")) == 2));
    CHECK((q[2].at("label") == "cold" && num(q[2].at("count")) == 1));
    auto& o = d.at("callOutcomes");
    CHECK((num(o.at("completed")) == 3 && num(o.at("failed")) == 1 && num(o.at("inProgress")) == 1 &&
           num(o.at("cancelled")) == 1));

    auto& perf = d.at("agentPerformance").as_array();
    REQUIRE(perf.size() == 3);
    CHECK(perf[0].at("agentId") == a1);
    CHECK(num(perf[0].at("calls")) == 2);
    CHECK(num(perf[0].at("successRate")) == 50);
    CHECK(num(perf[0].at("avgLeadScore")) == 77.5);
    CHECK(perf[1].at("name") == "Beta");  // byte order: 'B' < 'a'
    CHECK(perf[1].at("avgLeadScore").is_null());
    CHECK(num(perf[1].at("successRate")) == 100);
    CHECK(perf[2].at("name") == "alpha");
    CHECK(num(perf[2].at("avgLeadScore")) == 49);

    auto& h = d.at("hourlyDistribution").as_array();
    REQUIRE(h.size() == 24);
    std::vector<double> hours;
    for (auto& x : h) hours.push_back(num(x));
    std::vector<double> expected(24, 0);
    expected[0] = expected[1] = expected[2] = expected[5] = 1;  // c3, c1, c2, c7 (future, in W7)
    CHECK(hours == expected);
}

TEST_CASE("agents: DB part with placeholders, performance over all calls [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(fixture_sql);
    started_pool pool(db->url());

    auto check = [&](const char* when) {
        INFO(when);
        auto d = pool.data("agents", u1);
        auto& list = d.as_array();
        REQUIRE(list.size() == 3);
        // created_at descending, the tie (a2, a3) by id
        CHECK(list[0].at("id") == a2);
        CHECK(list[1].at("id") == a3);
        CHECK(list[2].at("id") == a1);
        auto& z = list[2];
        CHECK(str(z.at("createdAt")) == "2025-01-01T00:00:00.123Z");  // .123999 truncated
        CHECK(z.at("elevenLabsAgentId") == "agent_z");
        CHECK(z.at("type") == "call");
        CHECK(z.at("elevenLabs").is_null());
        CHECK(z.at("configStatus") == "none");
        auto& p = z.at("performance");
        CHECK(num(p.at("conversations")) == 4);
        CHECK(num(p.at("successRate")) == 50);   // c1, c6 completed of 4
        CHECK(p.at("avgDuration") == "3m 38s");  // 60 * 14.5 / 4 = 217.5 -> 218
        CHECK(num(p.at("creditsUsed")) == 122);
        CHECK(str(p.at("lastCallAt")) == iso_from_midnight(std::chrono::hours(1)));
        auto& alpha = list[0].at("performance");
        CHECK(num(alpha.at("conversations")) == 2);
        CHECK(alpha.at("avgDuration") == "1m 0s");
        CHECK(list[0].at("elevenLabsAgentId").is_null());
        CHECK(list[1].at("performance").at("avgDuration") == "0m 30s");
    };
    check("before any refresh: all live");
    REQUIRE(db->refresh() == 0);
    check("after a refresh: closed days from the view");
    CHECK(db->sql("SELECT count(*) FROM sidecache.agent_call_totals") != "0");

    auto d = pool.data("agents", u3);
    CHECK(d.as_array().empty());
}

TEST_CASE("a fill for a missing, inactive or malformed user finds no user [pg]", "[pg]") {
    auto db = pg_test_db::create(true);
    if (!db) return;
    db->sql(fixture_sql);
    started_pool pool(db->url());
    for (const char* q : {"overview", "analytics", "agents"}) {
        for (std::string user : {std::string(u2), std::string("44444444-4444-4444-8444-444444444444"),
                                 std::string("not-a-uuid"), std::string("")}) {
            INFO(q << " " << user);
            auto r = pool.fill(q, user);
            REQUIRE_FALSE(r.has_value());
            CHECK(r.error() == db::error::no_such_user);
        }
    }
    auto r = pool.fill("nope", u1);
    CHECK(r.error() == db::error::unknown_query);
    // A user deactivated now gets nothing from the next fill.
    REQUIRE(pool.fill("overview", u1).has_value());
    db->sql(std::string("UPDATE users SET is_active = false WHERE id = '") + u1 + "'");
    CHECK(pool.fill("overview", u1).error() == db::error::no_such_user);
}
