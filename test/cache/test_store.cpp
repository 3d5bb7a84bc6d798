// The store: LRU within a byte bound, tags, soft/hard invalidation, epochs,
// and a randomized run against a reference model.
#include "cache/key.hpp"
#include "cache/store.hpp"

#include <catch2/catch.hpp>

#include <list>
#include <map>
#include <random>
#include <set>

using namespace sidecache;
using namespace std::chrono_literals;
using cache::freshness;
using cache::invalidation;
using cache::put_result;

namespace {

conf::cache_config make_config(std::size_t max_bytes, unsigned shards) {
    conf::cache_config c;
    c.max_bytes = max_bytes;
    c.shards = shards;
    for (const char* name : {"overview", "analytics", "agents"}) {
        conf::route_config r;
        r.name = name;
        r.path = std::string("/api/") + name;
        r.ttl = 30s;
        r.stale_while_revalidate = 10s;
        r.stale_if_error = 60s;
        r.utc_day_bound = false;
        c.routes.push_back(r);
    }
    return c;
}

struct fixture {
    conf::cache_config config;
    sync::manual_time_source clock;
    cache::stats_table stats{{"overview", "analytics", "agents"}};
    cache::store store;

    explicit fixture(std::size_t max_bytes = 1 << 20, unsigned shards = 4)
        : config(make_config(max_bytes, shards)), store(config, clock, stats) {}

    std::string key(std::size_t route, const std::string& user, const std::string& q = "") {
        return cache::make_key(config.routes[route].name, user, q);
    }

    put_result put(std::size_t route, const std::string& user, const std::string& body,
                   std::vector<std::string> tags = {}, std::uint64_t epoch = 0) {
        auto bytes =
            cache::make_response_bytes(key(route, user), 200, {{"Content-Type", "application/json"}}, body);
        if (epoch == 0) {
            epoch = store.begin_fill();
            store.end_fill(epoch);
        }
        return store.put(route, user, bytes, tags, clock.steady_now() + config.routes[route].ttl,
                         clock.system_now(), epoch);
    }

    std::optional<std::string> body(std::size_t route, const std::string& user) {
        auto found = store.get(route, user, key(route, user));
        if (!found) return std::nullopt;
        return std::string(found->response.body());
    }

    std::optional<freshness> state(std::size_t route, const std::string& user) {
        auto found = store.get(route, user, key(route, user));
        if (!found) return std::nullopt;
        return found->state;
    }
};

}  // namespace

TEST_CASE("store: a stored answer is found with its bytes, then ages", "[unit]") {
    fixture f;
    REQUIRE(f.put(0, "u1", R"({"a":1})") == put_result::stored);
    auto found = f.store.get(0, "u1", f.key(0, "u1"));
    REQUIRE(found);
    CHECK(found->response.head() ==
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n");
    CHECK(found->response.body() == R"({"a":1})");
    CHECK(f.store.entries() == 1);
    CHECK_FALSE(f.body(0, "u2"));  // another user: another key
    CHECK_FALSE(f.body(1, "u1"));  // another route

    f.clock.advance(29s);
    CHECK(f.state(0, "u1") == freshness::fresh);
    f.clock.advance(2s);
    CHECK(f.state(0, "u1") == freshness::stale);
    f.clock.advance(10s);
    CHECK(f.state(0, "u1") == freshness::stale_if_error);
    f.clock.advance(50s);
    CHECK_FALSE(f.state(0, "u1"));  // dead: dropped
    CHECK(f.store.entries() == 0);
    CHECK(f.store.bytes() == 0);
    CHECK(f.stats[0].entries == 0);
    CHECK(f.stats[0].bytes == 0);
}

TEST_CASE("store: least recently used entries are evicted to stay within max_bytes", "[unit]") {
    std::string body(1000, 'x');
    auto one =
        cache::store::entry_cost(cache::make_response_bytes(cache::make_key("overview", "u0", ""), 200,
                                                            {{"Content-Type", "application/json"}}, body)
                                     .size(),
                                 0) +
        cache::store::tag_cost();
    fixture f(one * 3 + one / 2, 1);  // room for three
    REQUIRE(f.put(0, "u0", body) == put_result::stored);
    REQUIRE(f.put(0, "u1", body) == put_result::stored);
    REQUIRE(f.put(0, "u2", body) == put_result::stored);
    CHECK(f.body(0, "u0"));  // u0 is now the most recently used
    REQUIRE(f.put(0, "u3", body) == put_result::stored);
    CHECK(f.store.entries() == 3);
    CHECK(f.stats[0].evictions == 1);
    CHECK_FALSE(f.body(0, "u1"));  // the least recently used went
    CHECK(f.body(0, "u0"));
    CHECK(f.body(0, "u2"));
    CHECK(f.body(0, "u3"));
    CHECK(f.store.bytes() <= f.store.shard_budget());

    SECTION("an entry larger than the shard's budget is refused") {
        CHECK(f.put(1, "u9", std::string(one * 4, 'y')) == put_result::too_large);
        CHECK(f.store.entries() == 3);
    }
}

TEST_CASE("store: soft invalidation turns a user's entries stale, hard evicts them", "[unit]") {
    fixture f;
    f.put(0, "u1", "a");
    f.put(1, "u1", "b");
    f.put(0, "u2", "c");

    SECTION("soft") {
        CHECK(f.store.invalidate("user:u1", invalidation::soft) == 2);
        CHECK(f.state(0, "u1") == freshness::stale);
        CHECK(f.state(1, "u1") == freshness::stale);
        CHECK(f.state(0, "u2") == freshness::fresh);
        f.clock.advance(11s);  // the stale window starts at the invalidation
        CHECK(f.state(0, "u1") == freshness::stale_if_error);
        CHECK(f.stats[0].invalidated == 1);
    }
    SECTION("hard") {
        CHECK(f.store.invalidate("user:u1", invalidation::hard) == 2);
        CHECK_FALSE(f.body(0, "u1"));
        CHECK_FALSE(f.body(1, "u1"));
        CHECK(f.body(0, "u2") == "c");
        CHECK(f.store.entries() == 1);
    }
    SECTION("route tag") {
        CHECK(f.store.invalidate("route:overview", invalidation::hard) == 2);
        CHECK_FALSE(f.body(0, "u1"));
        CHECK_FALSE(f.body(0, "u2"));
        CHECK(f.body(1, "u1") == "b");
    }
    SECTION("an unknown tag touches nothing") {
        CHECK(f.store.invalidate("user:nobody", invalidation::hard) == 0);
        CHECK(f.store.entries() == 3);
    }
}

TEST_CASE("store: extra tags index entries across users", "[unit]") {
    fixture f;
    f.put(2, "u1", "agents of u1", {"agent:a1", "agent:a2"});
    f.put(2, "u2", "agents of u2", {"agent:a2"});
    f.put(0, "u1", "overview of u1");
    CHECK(f.store.invalidate("agent:a2", invalidation::hard) == 2);
    CHECK_FALSE(f.body(2, "u1"));
    CHECK_FALSE(f.body(2, "u2"));
    CHECK(f.body(0, "u1") == "overview of u1");
    CHECK(f.store.invalidate("agent:a1", invalidation::hard) == 0);
}

TEST_CASE("store: a fill that began before an invalidation of its tags is not stored", "[unit]") {
    fixture f;
    auto before = f.store.begin_fill();
    SECTION("user tag, no entry of that user yet") {
        f.store.invalidate("user:u1", invalidation::soft);
        CHECK(f.put(0, "u1", "old data", {}, before) == put_result::invalidated);
        CHECK_FALSE(f.body(0, "u1"));
        CHECK(f.put(0, "u2", "other user", {}, before) == put_result::stored);
    }
    SECTION("extra tag") {
        f.store.invalidate("agent:a1", invalidation::hard);
        CHECK(f.put(2, "u1", "old", {"agent:a1"}, before) == put_result::invalidated);
        CHECK(f.put(2, "u1", "old", {"agent:a9"}, before) == put_result::stored);
    }
    SECTION("route tag") {
        f.store.invalidate("route:analytics", invalidation::soft);
        CHECK(f.put(1, "u1", "old", {}, before) == put_result::invalidated);
        CHECK(f.put(0, "u1", "old", {}, before) == put_result::stored);
    }
    SECTION("a fill that began after it is stored") {
        f.store.invalidate("user:u1", invalidation::soft);
        auto after = f.store.begin_fill();
        CHECK(f.put(0, "u1", "new data", {}, after) == put_result::stored);
        f.store.end_fill(after);
        CHECK(f.body(0, "u1") == "new data");
    }
    f.store.end_fill(before);
}

TEST_CASE("store: randomized operations agree with a reference model", "[unit]") {
    // One shard so that LRU order is global and the model simple.
    const std::size_t budget = 12'000;
    fixture f(budget, 1);
    std::mt19937 rng(GENERATE(1u, 2u, 3u));

    struct model_entry {
        std::string body;
        std::size_t route;
        std::string user;
        std::vector<std::string> extras;
        std::chrono::steady_clock::time_point fresh_until;
        std::size_t cost;
    };
    std::map<std::string, model_entry> entries;
    std::list<std::string> lru;  // front: most recent
    auto model_bytes = [&] {
        std::size_t b = 0;
        std::set<std::string> tags;
        for (auto& [k, e] : entries) {
            b += e.cost;
            tags.insert("user:" + e.user);
            for (auto& t : e.extras) tags.insert(t);
        }
        b += tags.size() * cache::store::tag_cost();
        return b;
    };
    auto drop = [&](const std::string& k) {
        entries.erase(k);
        lru.remove(k);
    };

    for (int op = 0; op < 4000; ++op) {
        auto route = std::size_t(rng() % 3);
        auto user = "user-" + std::to_string(rng() % 8);
        auto key = f.key(route, user);
        const auto& rc = f.config.routes[route];
        auto now = f.clock.steady_now();
        auto kind = rng() % 10;
        INFO("op " << op << " kind " << kind);
        switch (kind) {
        case 0:
        case 1:
        case 2: {  // put
            std::string body(rng() % 1500, char('a' + rng() % 26));
            std::vector<std::string> extras;
            if (rng() % 2) extras.push_back("agent:" + std::to_string(rng() % 4));
            auto bytes = cache::make_response_bytes(key, 200, {{"Content-Type", "application/json"}}, body);
            auto cost = cache::store::entry_cost(bytes.size(), extras.size());
            auto r = f.put(route, user, body, extras);
            if (cost + cache::store::tag_cost() > budget) {
                REQUIRE(r == put_result::too_large);
                break;
            }
            REQUIRE(r == put_result::stored);
            drop(key);
            entries[key] = {body, route, user, extras, now + rc.ttl, cost};
            lru.push_front(key);
            while (model_bytes() > budget && lru.back() != key) drop(lru.back());
            break;
        }
        case 3:
        case 4:
        case 5:
        case 6: {  // get
            auto got = f.store.get(route, user, key);
            auto it = entries.find(key);
            std::optional<freshness> expected;
            if (it != entries.end()) {
                auto s = cache::classify(now, it->second.fresh_until, rc.stale_while_revalidate,
                                         rc.stale_if_error);
                if (s == freshness::dead)
                    drop(key);
                else {
                    expected = s;
                    lru.remove(key);
                    lru.push_front(key);
                }
            }
            REQUIRE(got.has_value() == expected.has_value());
            if (got) {
                REQUIRE(got->state == *expected);
                REQUIRE(got->response.body() == entries[key].body);
            }
            break;
        }
        case 7: {  // invalidate a user or an agent, soft or hard
            auto tag = rng() % 2 ? "user:" + user : "agent:" + std::to_string(rng() % 4);
            auto mode = rng() % 2 ? invalidation::soft : invalidation::hard;
            std::size_t expected = 0;
            for (auto it = entries.begin(); it != entries.end();) {
                auto& e = it->second;
                bool carries = "user:" + e.user == tag ||
                               std::find(e.extras.begin(), e.extras.end(), tag) != e.extras.end();
                if (!carries) {
                    ++it;
                    continue;
                }
                ++expected;
                if (mode == invalidation::hard) {
                    lru.remove(it->first);
                    it = entries.erase(it);
                } else {
                    e.fresh_until = std::min(e.fresh_until, now);
                    ++it;
                }
            }
            REQUIRE(f.store.invalidate(tag, mode) == expected);
            break;
        }
        default:
            f.clock.advance(std::chrono::milliseconds(rng() % 8000));
        }
        REQUIRE(f.store.entries() == entries.size());
        REQUIRE(f.store.bytes() == model_bytes());
        REQUIRE(f.store.bytes() <= budget);
    }
}
