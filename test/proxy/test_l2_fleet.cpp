// The second level on Redis, end to end: two sidecache processes (the real
// binary, the example configuration with SIDECACHE_REDIS_URL set) sharing one
// PostgreSQL and one redis-server of its own (test/support/redis_server.hpp:
// not the shared test Redis, since this test stops it). A user filled
// through one replica is an L2 hit through the other (its fill counter
// stays at 0); a write committed by SQL invalidates
// both levels in both; a value planted under another user's key is never
// served; Redis hung: requests answered within the operation timeout;
// Redis stopped: every request still answered, /readyz degraded: l2;
// Redis back: L2 hits again.
#include "db/pg_test_db.ipp"
#include "support/admin_stats.hpp"
#include "support/authorized_get.hpp"
#include "support/child_process.hpp"
#include "support/example_sidecache.hpp"
#include "support/redis_server.hpp"
#include "support/test_client.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <memory>
#include <thread>
#include <vector>

using namespace sidecache;
using namespace sidecache::test;
namespace json = boost::json;

namespace {

// Polls `done` every 10 ms until it holds; fails the test with `what` at the deadline.
template <class Done>
void wait_until(Done done, const char* what, std::chrono::milliseconds within = std::chrono::seconds(10)) {
    const auto until = std::chrono::steady_clock::now() + within;
    while (!done()) {
        INFO("waiting for " << what);
        REQUIRE(std::chrono::steady_clock::now() < until);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

// redis-cli on `port` with `args` (shell words).
std::string redis_cli(std::uint16_t port, const std::string& args) {
    return run_command("redis-cli -p " + std::to_string(port) + " " + args);
}

struct replica : example_sidecache {
    using example_sidecache::example_sidecache;

    json::object stats() const { return admin_stats(admin_port); }
    std::uint64_t l2(const char* key) const { return stats().at("l2").at(key).to_number<std::uint64_t>(); }
    std::uint64_t fills(const char* route) const {
        return stats().at("cache").at("routes").at(route).at("fills").to_number<std::uint64_t>();
    }
    std::uint64_t notifications() const {
        return stats().at("invalidation").at("notifications").to_number<std::uint64_t>();
    }
    bool listening() const { return stats().at("invalidation").at("listening").as_bool(); }

    // /readyz's "degraded" object.
    json::object degraded() const {
        test_client admin(admin_port);
        admin.send(get_request("/readyz"));
        auto r = admin.read_response();
        REQUIRE(r.has_value());
        return json::parse(r->body).at("degraded").as_object();
    }
};

struct l2_answer {
    unsigned status = 0;
    std::string body;
    std::string x_cache;
    std::string cache_status;
};

l2_answer get(test_client& client, const std::string& target, const std::string& token) {
    client.send(get_request(target, "Authorization: Bearer " + token + "\r\n"));
    auto r = client.read_response();
    REQUIRE(r.has_value());
    return {r->status, r->body, r->header("X-Cache"), r->header("Cache-Status")};
}

// The answer's "data" without its "cacheInfo" (which says whether it came
// from a cache: false in the fill's own answer, true in a cached copy).
std::string data_of(const std::string& body) {
    auto data = json::parse(body).at("data");
    if (data.is_object()) data.as_object().erase("cacheInfo");
    return json::serialize(data);
}

// What the replicas share: one PostgreSQL (the small data set), one Redis of
// its own (tests stop it), the ElevenLabs mock (answering after
// `mock_latency_ms`), the legacy backend; the replicas' environment, and 40
// active users who own agents. ready false: skipped (no PostgreSQL, Node.js
// or Redis, each by its own rule).
struct fleet_world {
    std::optional<pg_test_db> db = pg_test_db::create(false);
    std::unique_ptr<own_redis> redis;
    std::unique_ptr<child_process> mock, legacy;
    std::uint16_t mock_port = 0;
    const std::string secret = "l2-fleet-secret";
    std::string environment;
    std::vector<std::string> users;
    bool ready = false;

    explicit fleet_world(int mock_latency_ms = 0) {
        if (!db) return;
        const auto src = source_dir();
        if (!node_stand_ins_available(src)) return;
        redis = own_redis::start();
        if (!redis) return;
        run_command("node " + src + "/test/data/generate.js --database-url '" + db->url() +
                    "' --preset small --seed 13 >/dev/null");
        REQUIRE(db->migrate(false) == 0);
        REQUIRE(db->refresh() == 0);
        mock = std::make_unique<child_process>(
            "node " + src + "/test/mocks/elevenlabs.js --port 0 --latency-ms " +
            std::to_string(mock_latency_ms) + " --jitter-ms 0 --api-key test-elevenlabs-key");
        mock_port = mock->listening_port();
        const auto mock_port = std::to_string(this->mock_port);
        legacy = std::make_unique<child_process>(
            "node " + src + "/test/legacy/server.js --port 0 --database-url '" + db->url() +
            "' --jwt-secret " + secret + " --elevenlabs-url http://127.0.0.1:" + mock_port +
            " --elevenlabs-key test-elevenlabs-key");
        const auto legacy_port = std::to_string(legacy->listening_port());
        environment =
            "SIDECACHE_LISTEN=127.0.0.1:0 SIDECACHE_ADMIN_LISTEN=127.0.0.1:0 LEGACY_URL=http://127.0.0.1:" +
            legacy_port + " DATABASE_URL='" + db->url() + "' JWT_SECRET=" + secret +
            " ELEVENLABS_URL=http://127.0.0.1:" + mock_port +
            " ELEVENLABS_API_KEY=test-elevenlabs-key SIDECACHE_REDIS_URL=" + redis->url();
        auto rows = db->sql(
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM (SELECT u.id FROM users u "
            "WHERE u.is_active AND EXISTS (SELECT 1 FROM agents a WHERE a.user_id = u.id) "
            "ORDER BY u.id LIMIT 40) s");
        for (std::size_t at = 0; at < rows.size();) {
            auto comma = rows.find(',', at);
            users.push_back(rows.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
            at = comma == std::string::npos ? rows.size() : comma + 1;
        }
        REQUIRE(users.size() >= 30);
        ready = true;
    }
};

}  // namespace

TEST_CASE(
    "l2 fleet: two replicas share one Redis: fills, invalidation, isolation, Redis down and back [pg][redis]",
    "[pg][redis]") {
    fleet_world w;
    if (!w.ready) return;
    auto& db = w.db;
    auto& redis = w.redis;
    const auto& users = w.users;
    const auto& secret = w.secret;
    replica a(w.environment), b(w.environment);
    // Their first LISTEN flushes everything (and bumps gen:all): wait for it.
    wait_until([&] { return a.listening() && b.listening(); }, "both listening");
    wait_until([&] { return a.l2("invalidations_pending") == 0 && b.l2("invalidations_pending") == 0; },
               "the flushes made in Redis");

    test_client ca(a.port, std::chrono::seconds(30)), cb(b.port, std::chrono::seconds(30));
    const auto overview = std::string("/api/dashboard/overview");

    // A user filled through A is an L2 hit through B: no fill in B.
    const auto t0 = token_for(users[0], secret);
    auto filled = get(ca, overview, t0);
    REQUIRE(filled.status == 200);
    CHECK(filled.x_cache == "MISS");
    wait_until(
        [&] {
            UNSCOPED_INFO(json::serialize(a.stats().at("l2"))
                          << json::serialize(a.stats().at("invalidation")));
            return a.l2("stores") >= 1;
        },
        "A's answer stored in Redis");
    auto shared = get(cb, overview, t0);
    CHECK(shared.status == 200);
    CHECK(shared.x_cache == "HIT");
    CHECK(shared.cache_status == "sidecache; hit; detail=l2");
    CHECK(data_of(shared.body) == data_of(filled.body));
    CHECK(b.fills("overview") == 0);
    CHECK(a.fills("overview") == 1);
    CHECK(b.l2("hits") == 1);

    // A write committed by SQL: both levels invalidated in both replicas.
    {
        const auto before_a = a.notifications(), before_b = b.notifications();
        const auto credits = credits_of({filled.status, filled.body, filled.x_cache});
        db->sql("UPDATE users SET credits = credits + 5 WHERE id = '" + users[0] + "'");
        wait_until([&] { return a.notifications() > before_a && b.notifications() > before_b; },
                   "the write notified to both");
        // Until its bump is in Redis, a replica neither reads nor stores the
        // user's L2 entry: wait for it so that B's answer is stored.
        wait_until([&] { return a.l2("invalidations_pending") == 0 && b.l2("invalidations_pending") == 0; },
                   "the invalidations made in Redis");
        auto after_b = get(cb, overview, t0);
        CHECK(after_b.x_cache == "MISS");
        CHECK(credits_of({after_b.status, after_b.body, after_b.x_cache}) == credits + 5);
        wait_until(
            [&] {
                UNSCOPED_INFO(json::serialize(b.stats().at("l2"))
                              << json::serialize(b.stats().at("invalidation")));
                return b.l2("stores") >= 1;
            },
            "B's new answer stored in Redis");
        // A reads B's answer, made after the write.
        auto after_a = get(ca, overview, t0);
        CHECK(credits_of({after_a.status, after_a.body, after_a.x_cache}) == credits + 5);
        CHECK(after_a.cache_status == "sidecache; hit; detail=l2");
    }

    // users[1]'s value copied under users[2]'s key, with users[2]'s user
    // generation set to users[1]'s: only the key inside the value tells.
    {
        const auto t1 = token_for(users[1], secret), t2 = token_for(users[2], secret);
        auto other = get(ca, overview, t1);
        REQUIRE(other.status == 200);
        wait_until([&] { return a.l2("stores") >= 2; }, "users[1]'s answer stored in Redis");
        CHECK(redis_cli(redis->port(),
                        "EVAL 'local p = \"sidecache:\" "
                        "local v = redis.call(\"GET\", p .. \"v:overview\\n\" .. ARGV[1] .. \"\\n\") "
                        "redis.call(\"SET\", p .. \"v:overview\\n\" .. ARGV[2] .. \"\\n\", v) "
                        "redis.call(\"SET\", p .. \"gen:u:\" .. ARGV[2], redis.call(\"GET\", p .. \"gen:u:\" "
                        ".. ARGV[1])) "
                        "return 1' 0 " +
                            users[1] + " " + users[2]) == "1\n");
        const auto rejected = b.l2("rejected");
        auto own = get(cb, overview, t2);
        CHECK(own.status == 200);
        CHECK(own.x_cache == "MISS");
        CHECK(data_of(own.body) != data_of(other.body));
        CHECK(b.l2("rejected") == rejected + 1);
    }

    // Redis hung (SIGSTOP): each command gives up at l2.op_timeout (20 ms);
    // every request is answered, well before a waiter's 5 s.
    std::size_t next = 3;
    redis->freeze();
    const auto timeouts = a.l2("timeouts");
    for (int i = 0; i < 3; ++i) {
        const auto t = token_for(users[next++], secret);
        const auto started = std::chrono::steady_clock::now();
        CHECK(get(ca, overview, t).status == 200);
        CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
    }
    CHECK(a.l2("timeouts") > timeouts);
    redis->thaw();

    // Redis stopped: every request answered (fills), then the breaker opens:
    // /readyz degraded: l2, still ready.
    redis->stop();
    wait_until(
        [&] {
            REQUIRE(next + 1 < users.size());
            const auto t = token_for(users[next++], secret);
            CHECK(get(ca, overview, t).status == 200);
            CHECK(get(cb, overview, t).status == 200);
            return a.degraded().contains("l2") && b.degraded().contains("l2");
        },
        "both degraded: l2");
    CHECK(a.l2("errors") >= 5);

    // Redis back (empty): once a breaker lets a call through, a user filled
    // through A is an L2 hit through B again.
    redis->restart();
    wait_until(
        [&] {
            REQUIRE(next < users.size());
            const auto t = token_for(users[next++], secret);
            const auto stores = a.l2("stores");
            CHECK(get(ca, "/api/agents", t).status == 200);
            // Stored after the answer was sent: give it a second (the
            // breaker may still skip it: then the next user).
            const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
            while (a.l2("stores") == stores && std::chrono::steady_clock::now() < until)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (a.l2("stores") == stores) return false;
            auto through_b = get(cb, "/api/agents", t);
            CHECK(through_b.status == 200);
            return through_b.cache_status == "sidecache; hit; detail=l2";
        },
        "an L2 hit after Redis came back");
    wait_until([&] { return a.degraded().empty() && b.degraded().empty(); }, "neither degraded");
}

namespace {

// The lease keys in `r` (docs/l2.md "A starting replica"), one a line.
std::string leases(const own_redis& r) {
    return redis_cli(r.port(), "--scan --pattern 'sidecache:lease:*'");
}

}  // namespace

// A replica's first LISTEN is a flush; beside a replica that listened across
// it, and proves so by its lease and its heartbeats, that flush leaves
// gen:all alone: the newcomer serves what the first one stored.
TEST_CASE("l2 fleet: a replica started beside a listening one serves the fleet's L2 [pg][redis]",
          "[pg][redis]") {
    fleet_world w;
    if (!w.ready) return;
    const auto overview = std::string("/api/dashboard/overview");
    constexpr std::size_t n = 5;
    replica a(w.environment);
    wait_until([&] { return a.listening() && a.l2("invalidations_pending") == 0; }, "A listening, flushed");
    test_client ca(a.port, std::chrono::seconds(30));
    for (std::size_t i = 0; i < n; ++i)
        REQUIRE(get(ca, overview, token_for(w.users[i], w.secret)).status == 200);
    wait_until([&] { return a.l2("stores") >= n; }, "A's answers stored in Redis");
    // Written when A hears its own heartbeat with nothing pending.
    wait_until([&] { return !leases(*w.redis).empty(); }, "A's lease");

    replica b(w.environment);
    // Until the proof (or two heartbeat intervals) B's flush is pending.
    wait_until([&] { return b.listening() && b.l2("invalidations_pending") == 0; }, "B's start settled");
    test_client cb(b.port, std::chrono::seconds(30));
    std::size_t from_l2 = 0;
    for (std::size_t i = 0; i < n; ++i) {
        auto r = get(cb, overview, token_for(w.users[i], w.secret));
        CHECK(r.status == 200);
        from_l2 += r.cache_status == "sidecache; hit; detail=l2";
    }
    // A read may time out on a loaded machine (l2.op_timeout 20 ms: then B
    // fills that one itself); what must never happen is a miss, a value
    // found unusable, which is what a gen:all bump makes of every one.
    CHECK(b.l2("misses") == 0);
    CHECK(from_l2 >= 1);
    CHECK(b.l2("hits") == from_l2);
    CHECK(b.fills("overview") == n - from_l2);
    if (from_l2 < n)
        WARN(fmt::format("{} of {} reads not answered from L2: errors {}, timeouts {}, skipped {}", n - from_l2, n,
                         b.l2("errors"), b.l2("timeouts"), b.l2("skipped")));
    CHECK(b.l2("invalidations") == 0);
}

// Writes committed while no replica listened were bumped by no one: a
// replica started then must not serve the L2 copies they made old, even
// though a lease of the gone replica is still in Redis.
TEST_CASE(
    "l2 fleet: a replica started after writes nobody heard does not serve the old L2 values [pg][redis]",
    "[pg][redis]") {
    fleet_world w;
    if (!w.ready) return;
    const auto overview = std::string("/api/dashboard/overview");
    const auto t0 = token_for(w.users[0], w.secret);
    std::int64_t credits = 0;
    {
        replica a(w.environment);
        wait_until([&] { return a.listening() && a.l2("invalidations_pending") == 0; },
                   "A listening, flushed");
        test_client ca(a.port, std::chrono::seconds(30));
        auto filled = get(ca, overview, t0);
        REQUIRE(filled.status == 200);
        credits = credits_of({filled.status, filled.body, filled.x_cache});
        wait_until(
            [&] {
                UNSCOPED_INFO(json::serialize(a.stats().at("l2"))
                              << json::serialize(a.stats().at("invalidation")));
                return a.l2("stores") >= 1;
            },
            "A's answer stored in Redis");
        wait_until([&] { return !leases(*w.redis).empty(); }, "A's lease");
    }
    // A is gone: nobody hears this write. Its lease is kept (as it would be
    // for a few heartbeat intervals after A stopped): B reads it at start.
    w.db->sql("UPDATE users SET credits = credits + 5 WHERE id = '" + w.users[0] + "'");
    const auto kept = leases(*w.redis);
    REQUIRE(!kept.empty());
    CHECK(redis_cli(w.redis->port(), "PERSIST " + kept.substr(0, kept.find('\n'))) == "1\n");

    replica b(w.environment);
    wait_until([&] { return b.listening() && b.l2("invalidations_pending") == 0; }, "B's start settled");
    test_client cb(b.port, std::chrono::seconds(30));
    auto after = get(cb, overview, t0);
    CHECK(after.status == 200);
    CHECK(after.x_cache == "MISS");
    CHECK(credits_of({after.status, after.body, after.x_cache}) == credits + 5);
    CHECK(b.l2("invalidations") >= 1);  // gen:all, bumped after two heartbeat intervals without proof
}

namespace {

// A control call to the ElevenLabs mock (its /__mock/ endpoints).
json::object mock_call(std::uint16_t port, const std::string& method, const std::string& path,
                       const std::string& body = "") {
    test_client mock(port);
    mock.send(method + " " + path + " HTTP/1.1\r\nHost: mock\r\nContent-Type: application/json\r\n" +
              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    auto r = mock.read_response();
    REQUIRE(r);
    REQUIRE(r->status == 200);
    return json::parse(r->body).as_object();
}

}  // namespace

// The race of a fill that began before a write, across replicas: A's fill of
// a user's /api/agents has read PostgreSQL and is held at its ElevenLabs
// fetch; the write commits (it unpublishes and renames the user's agents,
// so the fill after it needs no ElevenLabs call); B answers after it with
// the write; A's fill then completes with the old answer, which is never
// stored in L2: A stores nothing, and both replicas keep showing the write.
TEST_CASE("l2 fleet: a fill that began before a write is never stored in L2 [pg][redis]", "[pg][redis]") {
    fleet_world w;
    if (!w.ready) return;
    const auto user = w.db->sql(
        "SELECT a.user_id FROM agents a JOIN users u ON u.id = a.user_id "
        "WHERE u.is_active AND a.elevenlabs_agent_id IS NOT NULL ORDER BY a.user_id LIMIT 1");
    REQUIRE(!user.empty());
    const auto token = token_for(user, w.secret);
    const std::string renamed = "Renamed after the write";
    replica a(w.environment);
    wait_until([&] { return a.listening() && a.l2("invalidations_pending") == 0; }, "A listening, flushed");
    replica b(w.environment);
    wait_until([&] { return b.listening() && b.l2("invalidations_pending") == 0; }, "B listening, settled");

    mock_call(w.mock_port, "POST", "/__mock/config", R"({"hold": true})");
    test_client before_write(a.port, std::chrono::seconds(30));
    before_write.send(get_request("/api/agents", "Authorization: Bearer " + token + "\r\n"));
    wait_until(
        [&] { return mock_call(w.mock_port, "GET", "/__mock/stats").at("inFlight").to_number<int>() >= 1; },
        "A's fill held at its ElevenLabs fetch");

    const auto heard_a = a.notifications(), heard_b = b.notifications();
    w.db->sql("UPDATE agents SET elevenlabs_agent_id = NULL, name = '" + renamed + "' WHERE user_id = '" +
              user + "'");
    wait_until([&] { return a.notifications() > heard_a && b.notifications() > heard_b; }, "the write heard");
    wait_until([&] { return a.l2("invalidations_pending") == 0 && b.l2("invalidations_pending") == 0; },
               "the invalidations made in Redis");

    test_client cb(b.port, std::chrono::seconds(30));
    const auto b_stores = b.l2("stores");
    auto after = get(cb, "/api/agents", token);
    REQUIRE(after.status == 200);
    CHECK(after.body.find(renamed) != std::string::npos);
    wait_until([&] { return b.l2("stores") > b_stores; }, "B's answer stored in Redis");

    // A's fill completes with what it read before the write.
    const auto a_stores = a.l2("stores");
    mock_call(w.mock_port, "POST", "/__mock/config", R"({"hold": false})");
    auto old = before_write.read_response();
    REQUIRE(old);
    CHECK(old->status == 200);
    CHECK(old->body.find(renamed) == std::string::npos);

    // Through A again (its first level refused its own fill): B's answer, from L2.
    test_client ca(a.port, std::chrono::seconds(30));
    auto through_a = get(ca, "/api/agents", token);
    CHECK(through_a.body.find(renamed) != std::string::npos);
    CHECK(through_a.cache_status == "sidecache; hit; detail=l2");
    auto through_b = get(cb, "/api/agents", token);
    CHECK(through_b.body.find(renamed) != std::string::npos);
    CHECK(a.l2("stores") == a_stores);
}
