// A fleet: two and three sidecache processes (the real binary, the example
// configuration) on one PostgreSQL, in front of one legacy stand-in. A write
// committed by SQL from outside is notified to every replica: once a
// replica's listener has handled the notification (its /stats counter moved),
// its next request shows the write, and a user deactivated there gets the
// legacy's 403 from every replica. And one replica of the fleet refreshes the
// materialized views, another within an interval when it dies.
#include "db/pg_test_db.ipp"
#include "support/admin_stats.hpp"
#include "support/authorized_get.hpp"
#include "support/child_process.hpp"
#include "support/example_sidecache.hpp"
#include "support/test_client.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <memory>
#include <thread>
#include <vector>

using namespace sidecache;
using namespace sidecache::test;
namespace json = boost::json;

namespace {

// One sidecache process; its ports read from its "listening on" line.
struct replica : example_sidecache {
    using example_sidecache::example_sidecache;

    // The "invalidation" section of /stats.
    json::object invalidation() const { return admin_stats(admin_port).at("invalidation").as_object(); }

    // The notifications its listener handled.
    std::uint64_t notifications() const {
        return invalidation().at("notifications").to_number<std::uint64_t>();
    }

    // Until its listener LISTENs (deadline 10 s): its first LISTEN evicts
    // everything cached before it.
    void wait_listening() const {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!invalidation().at("listening").as_bool()) {
            REQUIRE(std::chrono::steady_clock::now() < until);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }

    // Until at least `count` notifications were handled (deadline 10 s).
    void wait_notifications(std::uint64_t count) const {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (notifications() < count) {
            REQUIRE(std::chrono::steady_clock::now() < until);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
};

std::string agent_name(const std::string& body, const std::string& agent_id) {
    const auto parsed = json::parse(body);
    for (const auto& a : parsed.at("data").as_array())
        if (a.at("id") == agent_id.c_str()) return std::string(a.at("name").as_string());
    return "(no such agent)";
}

}  // namespace

TEST_CASE("fleet: a write committed by SQL is seen by the next request on every replica [pg]", "[pg]") {
    auto db = pg_test_db::create(false);
    if (!db) return;
    const auto src = source_dir();
    if (!node_stand_ins_available(src)) return;
    run_command("node " + src + "/test/data/generate.js --database-url '" + db->url() +
                "' --preset tiny --seed 11 >/dev/null");
    REQUIRE(db->migrate(false) == 0);
    REQUIRE(db->refresh() == 0);

    const std::string secret = "fleet-secret";
    child_process mock("node " + src +
                       "/test/mocks/elevenlabs.js --port 0 --latency-ms 0 --jitter-ms 0 --api-key test-elevenlabs-key");
    const auto mock_port = std::to_string(mock.listening_port());
    child_process legacy("node " + src + "/test/legacy/server.js --port 0 --database-url '" + db->url() +
                         "' --jwt-secret " + secret + " --elevenlabs-url http://127.0.0.1:" + mock_port +
                         " --elevenlabs-key test-elevenlabs-key");
    const auto legacy_port = std::to_string(legacy.listening_port());
    const std::string environment =
        "SIDECACHE_LISTEN=127.0.0.1:0 SIDECACHE_ADMIN_LISTEN=127.0.0.1:0 LEGACY_URL=http://127.0.0.1:" +
        legacy_port + " DATABASE_URL='" + db->url() + "' JWT_SECRET=" + secret +
        " ELEVENLABS_URL=http://127.0.0.1:" + mock_port +
        " ELEVENLABS_API_KEY=test-elevenlabs-key SIDECACHE_ACCESS_LOG=true";

    const auto replicas = GENERATE(2, 3);
    std::vector<std::unique_ptr<replica>> fleet;
    for (int i = 0; i < replicas; ++i) fleet.push_back(std::make_unique<replica>(environment));
    for (const auto& r : fleet) r->wait_listening();

    // An active user with an agent; every replica has that user's answers cached.
    const auto user = db->sql(
        "SELECT u.id FROM users u JOIN agents a ON a.user_id = u.id WHERE u.is_active "
        "ORDER BY u.id LIMIT 1");
    const auto agent = db->sql("SELECT id FROM agents WHERE user_id = '" + user + "' ORDER BY id LIMIT 1");
    const auto token = token_for(user, secret);
    std::vector<std::unique_ptr<test_client>> clients;
    for (const auto& r : fleet) {
        clients.push_back(std::make_unique<test_client>(r->port, std::chrono::seconds(30)));
        REQUIRE(authorized_get(*clients.back(), "/api/agents", token).status == 200);
        REQUIRE(authorized_get(*clients.back(), "/api/dashboard/overview", token).status == 200);
        REQUIRE(authorized_get(*clients.back(), "/api/agents", token).x_cache == "HIT");
    }

    SECTION("an agent renamed: every replica's next answer has the new name") {
        std::vector<std::uint64_t> before;
        for (const auto& r : fleet) before.push_back(r->notifications());
        db->sql("UPDATE agents SET name = 'renamed by the fleet test' WHERE id = '" + agent + "'");
        for (std::size_t i = 0; i < fleet.size(); ++i) {
            fleet[i]->wait_notifications(before[i] + 2);  // user:<id>, agent:<id>
            auto a = authorized_get(*clients[i], "/api/agents", token);
            CHECK(a.status == 200);
            CHECK(a.x_cache == "MISS");
            CHECK(agent_name(a.body, agent) == "renamed by the fleet test");
        }
    }
    SECTION("a user deactivated: every replica answers the legacy's 403") {
        std::vector<std::uint64_t> before;
        for (const auto& r : fleet) before.push_back(r->notifications());
        db->sql("UPDATE users SET is_active = false WHERE id = '" + user + "'");
        for (std::size_t i = 0; i < fleet.size(); ++i) {
            fleet[i]->wait_notifications(before[i] + 1);
            for (const char* path : {"/api/agents", "/api/dashboard/overview"}) {
                auto a = authorized_get(*clients[i], path, token);
                CHECK(a.status == 403);
                CHECK(a.body.find("FORBIDDEN") != std::string::npos);
            }
        }
    }
}

namespace {

// The "database" section's "refresher" of a replica's /stats.
json::object refresher_of(const replica& r) {
    return admin_stats(r.admin_port).at("database").at("refresher").as_object();
}

// Polls `done` until it holds; fails the test with `what` at the deadline.
template <class Done>
void wait_until(Done done, const char* what, std::chrono::milliseconds within) {
    const auto until = std::chrono::steady_clock::now() + within;
    while (!done()) {
        INFO("waiting for " << what);
        REQUIRE(std::chrono::steady_clock::now() < until);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

// The index in `fleet` of the one replica that says it leads.
std::size_t leader_index(const std::vector<std::unique_ptr<replica>>& fleet) {
    std::size_t leader = fleet.size();
    wait_until(
        [&] {
            int leaders = 0;
            for (std::size_t i = 0; i < fleet.size(); ++i)
                if (refresher_of(*fleet[i]).at("leader").as_bool()) {
                    ++leaders;
                    leader = i;
                }
            REQUIRE(leaders <= 1);
            return leaders == 1;
        },
        "one leader", std::chrono::seconds(10));
    return leader;
}

}  // namespace

TEST_CASE("fleet: one replica refreshes the views per interval, another takes over when it dies [pg]", "[pg]") {
    auto db = pg_test_db::create(false);
    if (!db) return;
    REQUIRE(db->migrate(false) == 0);  // and no refresh yet: the fleet's first is logged
    auto logged = [&] { return std::stoi(db->sql("SELECT count(*) FROM sidecache.refresh_log")); };
    auto last = [&] {
        return db->sql("SELECT reason || ' ' || by FROM sidecache.refresh_log ORDER BY id DESC LIMIT 1");
    };
    auto mark = [&] {  // as many marked users as SIDECACHE_REFRESH_MARKED_USERS below
        db->sql("INSERT INTO sidecache.late_changes (user_id) SELECT gen_random_uuid() FROM generate_series(1, 3)");
    };
    const auto interval = std::chrono::seconds(1);
    // Nothing answers on the legacy's port: only the refresher is looked at.
    const std::string environment =
        "SIDECACHE_LISTEN=127.0.0.1:0 SIDECACHE_ADMIN_LISTEN=127.0.0.1:0 LEGACY_URL=http://127.0.0.1:9"
        " DATABASE_URL='" +
        db->url() + "' JWT_SECRET=fleet-secret SIDECACHE_REFRESH_INTERVAL=1s SIDECACHE_REFRESH_MARKED_USERS=3";

    const auto replicas = GENERATE(2, 3);
    std::vector<std::unique_ptr<replica>> fleet;
    for (int i = 0; i < replicas; ++i) fleet.push_back(std::make_unique<replica>(environment));
    auto leader = leader_index(fleet);
    // A leader's skipped checks: one per interval in which it found nothing to do.
    auto skipped = [&] { return refresher_of(*fleet[leader]).at("skipped").to_number<std::uint64_t>(); };
    auto refreshes_of_fleet = [&] {
        std::uint64_t n = 0;
        for (const auto& r : fleet) n += refresher_of(*r).at("refreshes").to_number<std::uint64_t>();
        return n;
    };

    // Started together, the fleet refreshes once; three more intervals add nothing.
    wait_until([&] { return logged() >= 1; }, "the first refresh", std::chrono::seconds(10));
    const auto skips = skipped();
    wait_until([&] { return skipped() >= skips + 3; }, "three intervals", 6 * interval);
    CHECK(logged() == 1);
    CHECK(last().rfind("first ", 0) == 0);
    CHECK(refreshes_of_fleet() == 1);
    WARN(replicas << " replicas: " << logged() << " refresh(es) logged, then " << skipped()
                  << " checks of the leader, 1 s apart, found nothing to refresh (before: one refresh per "
                     "replica at its start, and each interval)");

    // Marks past the threshold: one more refresh, by the leader alone.
    mark();
    wait_until([&] { return logged() == 2; }, "the refresh for the marks", 3 * interval);
    const auto skips_after_marks = skipped();
    wait_until([&] { return skipped() >= skips_after_marks + 2; }, "two intervals", 5 * interval);
    CHECK(logged() == 2);
    CHECK(last() == "marks " + db->sql("SELECT by FROM sidecache.refresh_log ORDER BY id LIMIT 1"));
    CHECK(refreshes_of_fleet() == 2);

    // The leader dies (no shutdown of its own): another leads and refreshes
    // for the next marks within one interval (+ a margin for the refresh).
    const auto dead_pid = fleet[leader]->process->pid();
    fleet[leader]->process->signal(SIGKILL);
    fleet.erase(fleet.begin() + static_cast<std::ptrdiff_t>(leader));
    const auto killed_at = std::chrono::steady_clock::now();
    mark();
    wait_until([&] { return logged() == 3; }, "a refresh by another replica", interval + std::chrono::seconds(2));
    WARN("the leader SIGKILLed: the next refresh logged after "
         << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at)
                .count()
         << " ms (refresh_interval 1 s)");
    const auto by = last();
    CHECK(by.rfind("marks ", 0) == 0);
    CHECK_FALSE(by.ends_with(":" + std::to_string(dead_pid)));
    leader = leader_index(fleet);
    CHECK(by.ends_with(":" + std::to_string(fleet[leader]->process->pid())));
}
