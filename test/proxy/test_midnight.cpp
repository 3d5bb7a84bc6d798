// UTC midnight with the whole world on a shifted clock: PostgreSQL (its own
// throwaway server), the legacy stand-in, the external-API mock and the
// sidecache binary all run under libfaketime with one relative offset
// (FAKETIME="+N", FAKETIME_DONT_FAKE_MONOTONIC=1: steady clocks stay real),
// chosen so that their 00:00 UTC comes about a minute after the test starts.
// Before midnight every active user's three answers equal the legacy's; a
// pass right after midnight gets no answer computed before it (none marked
// stale, overview's calculatedAt and every Age after midnight), and every
// answer equals the legacy's again. SIDECACHE_TEST_MIDNIGHT_NO_REFILL=1 runs
// it with cache.midnight_refill off (it must pass too: past_day_end alone
// keeps yesterday's answers out; with that rule removed as well, it fails).
#include "auth/verifier.hpp"
#include "db/json_diff.hpp"
#include "db/pg_test_db.ipp"
#include "support/admin_stats.hpp"
#include "support/authorized_get.hpp"
#include "support/child_process.hpp"
#include "support/test_client.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>

using namespace sidecache;
using namespace sidecache::test;
using namespace std::chrono_literals;
namespace json = boost::json;
using sys = std::chrono::system_clock;

namespace {

const char* const libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

// A throwaway PostgreSQL (scripts/pg) started under `environment`, stopped
// and removed when destroyed.
struct shifted_postgres {
    std::string dir;
    std::string url;

    explicit shifted_postgres(const std::string& environment) {
        char tmpl[] = "/tmp/sidecache-midnight-pg.XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        auto exports = run_command(environment + " " + source_dir() + "/scripts/pg start " + dir);
        std::smatch m;
        static const std::regex database_url(R"(DATABASE_URL='?([^'\n]+)'?)");
        INFO(exports);
        REQUIRE(std::regex_search(exports, m, database_url));
        url = m[1];
    }
    ~shifted_postgres() {
        std::system((source_dir() + "/scripts/pg stop " + dir + " >/dev/null 2>&1").c_str());
    }
};

// The sidecache binary: the example configuration with `ttl: 10m` and the
// midnight refill on or off, from the source tree (its queries_dir and
// migrations_dir are relative).
struct sidecache_process {
    std::string config_path;
    std::unique_ptr<child_process> process;
    std::uint16_t port = 0;
    std::uint16_t admin_port = 0;

    sidecache_process(const std::string& environment, bool refill_ahead) {
        std::ifstream in(source_dir() + "/conf/sidecache.example.yaml");
        std::stringstream text;
        text << in.rdbuf();
        auto yaml = std::regex_replace(text.str(), std::regex("ttl: 30s"), "ttl: 10m");
        yaml = std::regex_replace(yaml, std::regex("spread: 30s"), "spread: 5s");
        // What is checked is each answer, not its time: under TSan a fill
        // can take longer than the example's 5 s wait.
        yaml = std::regex_replace(yaml, std::regex("wait_timeout: 5s"), "wait_timeout: 30s");
        if (!refill_ahead)
            yaml = std::regex_replace(yaml, std::regex("(midnight_refill:\n(    #[^\n]*\n)*    enabled: )true"),
                                      "$1false");
        REQUIRE(yaml.find(refill_ahead ? "spread: 5s" : "    enabled: false") != std::string::npos);
        config_path = "/tmp/sidecache-midnight-" + std::to_string(::getpid()) + ".yaml";
        std::ofstream(config_path) << yaml;
        // ASan wants its runtime first; libfaketime is preloaded before it.
        process = std::make_unique<child_process>(
            "cd " SIDECACHE_SOURCE_DIR " && " + environment +
            " ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0\" exec " SIDECACHE_BINARY_DIR
            "/sidecache --config " + config_path);
        const auto where = process->sidecache_ports();
        port = where.port;
        admin_port = where.admin_port;
    }
    ~sidecache_process() {
        process.reset();
        std::filesystem::remove(config_path);
    }
};

// The midnight of the shifted clocks, in shifted time; now on them.
struct shifted_clock {
    std::chrono::seconds offset{};
    sys::time_point midnight;

    sys::time_point now() const { return sys::now() + offset; }
    // Blocks until the shifted clock reads `t` (the event is the clock's).
    void wait_until(sys::time_point t) const { std::this_thread::sleep_until(t - offset); }
    double since_midnight() const { return std::chrono::duration<double>(now() - midnight).count(); }
};

std::int64_t age_of(const client_response& r) {
    auto age = r.header("Age");
    return age.empty() ? 0 : std::stoll(age);
}

}  // namespace

TEST_CASE("UTC midnight on a shifted clock: no answer from before it, every answer the legacy's [pg]", "[pg]") {
#if defined(__SANITIZE_THREAD__)
    // Not under TSan: its runtime deadlocks in a process started with
    // libfaketime's LD_PRELOAD (seen: sidecache's io threads waiting on
    // TSan's internal mutex, requests never answered). The plain and ASan
    // stages run this world; the refill's races are covered under TSan by
    // cache_midnight_refill. A known gap, said in the session's note.
    WARN("TSan build: the libfaketime world is not run (TSan deadlocks under its LD_PRELOAD)");
    return;
#endif
    if (const char* skip = std::getenv("SIDECACHE_SKIP_PG"); skip && std::string_view(skip) == "1") {
        WARN("SIDECACHE_SKIP_PG=1: [pg] test skipped");
        return;
    }
    const auto src = source_dir();
    if (!node_stand_ins_available(src)) return;
    INFO("libfaketime (Debian faketime, scripts/bootstrap installs it) at " << libfaketime);
    REQUIRE(std::filesystem::exists(libfaketime));

    // Midnight on the shifted clocks comes `lead` after now: time enough to
    // start everything, then about 20 s of reading before it.
    constexpr auto lead = 60s;
    shifted_clock clock;
    const auto real_now = std::chrono::floor<std::chrono::seconds>(sys::now());
    clock.midnight = std::chrono::floor<std::chrono::days>(real_now + lead) + std::chrono::days{1};
    clock.offset = std::chrono::duration_cast<std::chrono::seconds>(clock.midnight - (real_now + lead));
    const std::string environment = std::string("LD_PRELOAD=") + libfaketime + " FAKETIME=+" +
                                    std::to_string(clock.offset.count()) + " FAKETIME_DONT_FAKE_MONOTONIC=1";

    shifted_postgres pg(environment);
    ::setenv("SIDECACHE_TEST_DATABASE_URL", pg.url.c_str(), 1);
    auto db = pg_test_db::create(false);
    REQUIRE(db);
    INFO("PostgreSQL's clock is shifted");
    REQUIRE(db->sql("SELECT (abs(extract(epoch FROM now()) - " + std::to_string(sys::to_time_t(clock.now())) +
                    ") < 30)::text") == "true");
    run_command(environment + " node " + src + "/test/data/generate.js --database-url '" + db->url() +
                "' --preset tiny --seed 5 >/dev/null");
    REQUIRE(db->migrate(false) == 0);
    REQUIRE(db->refresh() == 0);

    const std::string secret = "midnight-secret";
    child_process mock(environment + " node " + src +
                       "/test/mocks/elevenlabs.js --port 0 --latency-ms 0 --jitter-ms 0 --api-key k");
    const auto mock_port = std::to_string(mock.listening_port());
    child_process legacy(environment + " node " + src + "/test/legacy/server.js --port 0 --database-url '" +
                         db->url() + "' --jwt-secret " + secret + " --elevenlabs-url http://127.0.0.1:" +
                         mock_port + " --elevenlabs-key k");
    const auto legacy_port = static_cast<std::uint16_t>(legacy.listening_port());
    const bool refill_ahead = std::getenv("SIDECACHE_TEST_MIDNIGHT_NO_REFILL") == nullptr;
    sidecache_process sidecache(environment + " SIDECACHE_LISTEN=127.0.0.1:0 SIDECACHE_ADMIN_LISTEN=127.0.0.1:0 "
                                              "LEGACY_URL=http://127.0.0.1:" +
                                    std::to_string(legacy_port) + " DATABASE_URL='" + db->url() +
                                    "' JWT_SECRET=" + secret + " ELEVENLABS_URL=http://127.0.0.1:" + mock_port +
                                    " ELEVENLABS_API_KEY=k",
                                refill_ahead);

    // Tokens valid on the shifted clock.
    std::vector<std::pair<std::string, std::string>> users;  // id, token
    {
        std::istringstream ids(db->sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM users WHERE is_active"));
        const auto exp = sys::to_time_t(clock.now()) + 24 * 3600;
        for (std::string id; std::getline(ids, id, ',');)
            users.emplace_back(id, auth::sign_hs256(R"({"sub":")" + id + R"(","exp":)" + std::to_string(exp) + "}",
                                                    secret));
    }
    REQUIRE(users.size() >= 3);

    INFO("the world took too long to start: " << clock.since_midnight() << " s from midnight");
    REQUIRE(clock.since_midnight() < -15);
    clock.wait_until(clock.midnight - 20s);

    const char* endpoints[] = {"/api/dashboard/overview", "/api/dashboard/analytics", "/api/agents"};
    auto skip = [](const std::string& path) { return path == "data.cacheInfo"; };
    test_client to_sidecache(sidecache.port, 30s);
    test_client to_legacy(legacy_port, 30s);
    auto get = [](test_client& c, const char* target, const std::string& token) {
        c.send(get_request(target, "Authorization: Bearer " + token + "\r\n"));
        auto r = c.read_response();
        REQUIRE(r.has_value());
        return *r;
    };

    // Before midnight: each answer (a miss, then a hit) equals the legacy's.
    for (const auto& [user, token] : users) {
        for (const char* endpoint : endpoints) {
            INFO("before midnight: user " << user << " endpoint " << endpoint);
            const auto theirs = get(to_legacy, endpoint, token);
            REQUIRE(theirs.status == 200);
            for (int i = 0; i < 2; ++i) {
                const auto mine = get(to_sidecache, endpoint, token);
                REQUIRE(mine.status == 200);
                auto diff = json_diff(json::parse(mine.body), json::parse(theirs.body), skip);
                INFO("first difference (sidecache vs legacy): " << diff.value_or(""));
                CHECK_FALSE(diff.has_value());
            }
        }
    }
    INFO("the pass before midnight ended after it: nothing can be told");
    REQUIRE(clock.since_midnight() < -1);

    // Right after midnight: nothing computed before it, and the legacy's figures.
    const std::chrono::year_month_day day{std::chrono::floor<std::chrono::days>(clock.midnight)};
    const auto midnight_iso = fmt::format("{:04}-{:02}-{:02}T00:00:00.000Z", int(day.year()), unsigned(day.month()),
                                          unsigned(day.day()));
    clock.wait_until(clock.midnight + 1s);
    int hits = 0, answers = 0;
    for (const auto& [user, token] : users) {
        for (const char* endpoint : endpoints) {
            INFO("after midnight: user " << user << " endpoint " << endpoint);
            const auto mine = get(to_sidecache, endpoint, token);
            const auto asked_by = clock.since_midnight();  // >= the server's, when it answered
            const auto theirs = get(to_legacy, endpoint, token);
            REQUIRE(mine.status == 200);
            REQUIRE(theirs.status == 200);
            ++answers;
            hits += mine.header("X-Cache") == "HIT";
            INFO("X-Cache: " << mine.header("X-Cache") << ", Age: " << age_of(mine) << ", " << asked_by
                             << " s after midnight");
            CHECK(mine.header("X-Cache").find("STALE") == std::string::npos);
            // An Age above the time since midnight: computed before it.
            CHECK(static_cast<double>(age_of(mine)) <= asked_by);
            const auto body = json::parse(mine.body);
            const auto* data = body.at("data").if_object();  // an array for /api/agents
            if (const auto* at = data ? data->if_contains("cacheInfo") : nullptr) {
                const std::string calculated(at->at("calculatedAt").as_string());
                INFO("overview calculatedAt " << calculated);
                CHECK(calculated >= midnight_iso);
            }
            auto diff = json_diff(body, json::parse(theirs.body), skip);
            INFO("sidecache: " << mine.body << "\nlegacy: " << theirs.body);
            INFO("first difference (sidecache vs legacy): " << diff.value_or(""));
            CHECK_FALSE(diff.has_value());
        }
    }
    WARN("after midnight: " << hits << " of " << answers << " answers were hits (refill ahead "
                            << (refill_ahead ? "on" : "off") << "): "
                            << json::serialize(admin_stats(sidecache.admin_port).at("midnight_refill")));
}
