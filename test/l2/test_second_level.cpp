// The cache's use of the second level (l2::second_level_cache) through the
// service, on a fake Redis (test/l2/fake_redis.hpp): two services sharing it
// stand for two replicas. What is checked is what a client sees (bytes,
// Cache-Status, fills made) and what Redis holds.
#include "cache/service.hpp"
#include "l2/fake_redis.hpp"
#include "l2/second_level.hpp"
#include "l2/value.hpp"
#include "support/answer_bytes.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <memory>

using namespace sidecache;
using test::body_of;
using test::bytes_of;
using namespace std::chrono_literals;
namespace net = boost::asio;
using cache::answer_kind;

namespace {

conf::cache_config make_config() {
    conf::cache_config c;
    c.shards = 2;
    conf::route_config r;
    r.name = "overview";
    r.path = "/api/overview";
    r.ttl = 30s;
    r.utc_day_bound = false;
    c.routes.push_back(r);
    return c;
}

// Fills "fill N from <name>"; gated: waits until released.
struct counting_filler final : cache::filler {
    net::io_context& ioc;
    std::string name;
    std::size_t fills = 0;
    std::size_t body_size = 0;  // 0: the short body
    std::shared_ptr<net::steady_timer> gate;

    counting_filler(net::io_context& io, std::string n) : ioc(io), name(std::move(n)) {}

    net::awaitable<cache::fill_result> fill(cache::fill_request) override {
        auto n = ++fills;
        if (gate) co_await gate->async_wait(net::as_tuple(net::use_awaitable));
        cache::fill_result r;
        r.status = 200;
        r.headers = {{"Content-Type", "application/json"}};
        r.body = body_size ? std::string(body_size, 'x') : "fill " + std::to_string(n) + " from " + name;
        co_return r;
    }
};

// One sidecache: its cache, its second level, its filler; all on one io_context.
struct replica {
    conf::cache_config config = make_config();
    cache::service svc;
    l2::second_level_cache l2;
    counting_filler filler;

    replica(net::io_context& ioc, const sync::time_source& clock, const conf::l2_config& l2cfg,
            test::fake_redis& redis, std::string name)
        : svc(config, clock),
          l2(l2cfg, {{&ioc, &redis}}, ioc.get_executor(), redis),
          filler(ioc, std::move(name)) {
        svc.use_second_level(&l2);
    }
};

struct fixture {
    net::io_context ioc;
    sync::manual_time_source clock;
    test::fake_redis redis;
    conf::l2_config l2cfg = [] {
        conf::l2_config c;
        c.enabled = true;
        c.max_value_bytes = 4096;
        return c;
    }();
    replica a{ioc, clock, l2cfg, redis, "a"};
    replica b{ioc, clock, l2cfg, redis, "b"};

    // Starts a request of `user` through `r`; its answer lands in *out.
    void start(replica& r, std::string user, std::shared_ptr<std::optional<cache::cache_answer>> out) {
        net::co_spawn(
            ioc,
            [&r, user = std::move(user), out]() -> net::awaitable<void> {
                cache::cache_request req{0, user, "", true};
                *out = co_await r.svc.serve(req, {}, r.filler);
            },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
    }

    // Runs the io_context until `done`, with a deadline.
    template <class Done>
    void run_until(Done done) {
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            ioc.restart();
            ioc.run_one_for(20ms);
        }
        REQUIRE(done());
        ioc.restart();
        ioc.poll();  // what the answer left to do: the store in L2
    }

    cache::cache_answer serve(replica& r, std::string user = "u1") {
        auto out = std::make_shared<std::optional<cache::cache_answer>>();
        start(r, std::move(user), out);
        run_until([&] { return out->has_value(); });
        return **out;
    }

    std::string value_key(std::string_view user = "u1") const {
        return "sidecache:v:overview\n" + std::string(user) + "\n";
    }
};

}  // namespace

TEST_CASE("l2: a user filled through one replica is an L2 hit through the other", "[unit]") {
    fixture f;
    auto first = f.serve(f.a);
    CHECK(first.kind == answer_kind::miss_stored);
    CHECK(body_of(first) == "fill 1 from a");
    CHECK(f.a.l2.stats().stores == 1);
    REQUIRE(f.redis.data.contains(f.value_key()));
    CHECK(f.redis.px[f.value_key()] == 30'000);  // its remaining life

    auto second = f.serve(f.b);
    CHECK(f.b.filler.fills == 0);
    CHECK(second.kind == answer_kind::hit_l2);
    CHECK(body_of(second) == "fill 1 from a");
    CHECK(bytes_of(second).find("\r\nCache-Status: sidecache; hit; detail=l2\r\nX-Cache: HIT\r\n") !=
          std::string::npos);
    CHECK(f.b.l2.stats().hits == 1);

    // Now in B's first level: no Redis call for the next one.
    auto mgets = f.redis.count("MGET");
    f.clock.advance(10s);
    auto third = f.serve(f.b);
    CHECK(third.kind == answer_kind::hit);
    CHECK(bytes_of(third).find("\r\nAge: 10\r\n") != std::string::npos);
    CHECK(f.redis.count("MGET") == mgets);
}

TEST_CASE("l2: an invalidation through one replica makes the copy unusable for the other", "[unit]") {
    fixture f;
    f.serve(f.a);
    f.a.svc.invalidate("user:u1", cache::invalidation::hard);
    f.run_until([&] { return f.a.l2.pending() == 0; });
    CHECK(f.a.l2.stats().bumps == 1);

    auto answer = f.serve(f.b);
    CHECK(answer.kind == answer_kind::miss_stored);
    CHECK(body_of(answer) == "fill 1 from b");
    CHECK(f.b.l2.stats().rejected == 1);  // the old copy, its generation gone
    // B's answer replaced it: A, invalidated, reads it.
    auto again = f.serve(f.a);
    CHECK(again.kind == answer_kind::hit_l2);
    CHECK(body_of(again) == "fill 1 from b");
}

TEST_CASE("l2: a fill that began before an invalidation is not stored in L2", "[unit]") {
    fixture f;
    f.a.filler.gate = std::make_shared<net::steady_timer>(f.ioc, net::steady_timer::time_point::max());
    auto out = std::make_shared<std::optional<cache::cache_answer>>();
    f.start(f.a, "u1", out);
    f.run_until([&] { return f.a.filler.fills == 1; });
    // The write, seen by B while A's fill runs: B bumps the generation.
    f.b.svc.invalidate("user:u1", cache::invalidation::hard);
    f.run_until([&] { return f.b.l2.pending() == 0; });
    f.a.filler.gate->cancel();
    f.run_until([&] { return out->has_value(); });
    CHECK(body_of(**out) == "fill 1 from a");
    CHECK(f.a.l2.stats().store_invalidated == 1);
    CHECK(f.a.l2.stats().stores == 0);
    CHECK_FALSE(f.redis.data.contains(f.value_key()));
    // So B fills on its own.
    auto answer = f.serve(f.b);
    CHECK(body_of(answer) == "fill 1 from b");
}

TEST_CASE("l2: an invalidation whose bump fails skips L2 for the user until the retry succeeds", "[unit]") {
    fixture f;
    f.serve(f.a);
    // Bumps fail (and are retried); reads and stores do not.
    f.redis.fail_with = l2::make_error_code(l2::error::unavailable);
    f.redis.fail_only = [](const std::vector<std::string>& a) { return a[0] == "EVAL" && a[2] == "1"; };
    f.b.svc.invalidate("user:u1", cache::invalidation::hard);
    f.run_until([&] { return f.b.l2.stats().bump_failures >= 1; });
    CHECK(f.b.l2.pending() == 1);

    // The bump is not made: B does not read the copy (which it would
    // serve), nor store over it.
    auto mgets = f.redis.count("MGET");
    auto answer = f.serve(f.b);
    CHECK(body_of(answer) == "fill 1 from b");
    CHECK(answer.kind == answer_kind::miss_stored);
    CHECK(f.redis.count("MGET") == mgets);
    CHECK(f.b.l2.stats().skipped == 1);
    // Another user is not held back.
    CHECK(f.serve(f.b, "u2").kind == answer_kind::miss_stored);
    CHECK(f.redis.count("MGET") == mgets + 1);

    // The retry (after its backoff) bumps: A's old copy is unusable.
    f.redis.fail_with.reset();
    f.run_until([&] { return f.b.l2.pending() == 0; });
    f.b.svc.invalidate("user:u1", cache::invalidation::hard);  // drop B's own first level
    f.run_until([&] { return f.b.l2.pending() == 0; });
    auto after = f.serve(f.b);
    CHECK(body_of(after) == "fill 3 from b");
    CHECK(f.b.l2.stats().rejected == 1);  // A's copy, read and refused
}

TEST_CASE("l2: a value planted under a user's key but of another key is never served", "[unit]") {
    fixture f;
    f.serve(f.a, "u2");  // sets the generations the planted value carries
    auto planted = l2::decode(f.redis.data.at(f.value_key("u2")), "overview\nu2\n");
    REQUIRE(planted.has_value());
    f.serve(f.a, "u1");  // u1's generations
    // u2's answer, written under u1's key with u1's current generations.
    auto forged = *planted;
    forged.user_generation = f.redis.data.at("sidecache:gen:u:u1");
    f.redis.data[f.value_key("u1")] = l2::encode(forged);

    auto answer = f.serve(f.b, "u1");
    CHECK(body_of(answer) == "fill 1 from b");
    CHECK(f.b.l2.stats().rejected == 1);
    CHECK(f.b.l2.stats().hits == 0);
}

TEST_CASE("l2: a garbled or truncated value is not served", "[unit]") {
    fixture f;
    f.serve(f.a);
    auto good = f.redis.data.at(f.value_key());
    auto damaged = GENERATE(as<std::string>{}, "garbage", "", "truncated");
    f.redis.data[f.value_key()] = damaged == "truncated" ? good.substr(0, good.size() - 1) : damaged;
    auto answer = f.serve(f.b);
    CHECK(body_of(answer) == "fill 1 from b");
    CHECK(f.b.l2.stats().rejected == 1);
}

TEST_CASE("l2: an answer larger than max_value_bytes is kept in the first level only", "[unit]") {
    fixture f;
    f.a.filler.body_size = 5000;
    auto answer = f.serve(f.a);
    CHECK(answer.kind == answer_kind::miss_stored);
    CHECK(body_of(answer).size() == 5000);
    CHECK(f.a.l2.stats().store_too_large == 1);
    CHECK_FALSE(f.redis.data.contains(f.value_key()));
    CHECK(f.serve(f.a).kind == answer_kind::hit);
}

TEST_CASE("l2: Redis failing or its breaker open: the fill runs, the client gets its answer", "[unit]") {
    fixture f;
    SECTION("a command fails (timeout)") {
        f.redis.fail_with = l2::make_error_code(l2::error::timeout);
        auto answer = f.serve(f.a);
        CHECK(answer.kind == answer_kind::miss_stored);
        CHECK(body_of(answer) == "fill 1 from a");
        CHECK(f.a.l2.stats().errors == 1);
        CHECK(f.a.l2.stats().timeouts == 1);
        CHECK(f.redis.count("EVAL") == 0);  // no ticket: no store
    }
    SECTION("the breaker is open: no call at all, /readyz degraded") {
        f.redis.up = false;
        auto answer = f.serve(f.a);
        CHECK(body_of(answer) == "fill 1 from a");
        CHECK(f.redis.commands.empty());
        CHECK(f.a.l2.degraded());
        f.redis.up = true;
        f.serve(f.a, "u2");
        CHECK_FALSE(f.a.l2.degraded());
    }
    SECTION("a server error reply") {
        f.redis.error_reply = "WRONGTYPE Operation against a key holding the wrong kind of value";
        auto answer = f.serve(f.a);
        CHECK(answer.kind == answer_kind::miss_stored);
        CHECK(body_of(answer) == "fill 1 from a");
        CHECK(f.a.l2.stats().errors == 1);
        CHECK(f.a.l2.stats().timeouts == 0);
    }
}

TEST_CASE("l2: while the invalidation channel is unproven, the second level is neither read nor written",
          "[unit]") {
    fixture f;
    f.serve(f.a);
    f.b.svc.suspend_freshness(true);
    const auto commands = f.redis.commands.size();
    auto answer = f.serve(f.b);
    CHECK(body_of(answer) == "fill 1 from b");
    CHECK(f.redis.commands.size() == commands);
    f.b.svc.suspend_freshness(false);
    CHECK(f.serve(f.b, "u2").kind == answer_kind::miss_stored);
    CHECK(f.redis.commands.size() > commands);
}

TEST_CASE(
    "l2: a starting replica's held flush skips L2 until released; released unbumped, the fleet's copies "
    "serve",
    "[unit]") {
    fixture f;
    f.serve(f.a, "u1");  // "fill 1 from a"
    f.serve(f.a, "u2");  // "fill 2 from a"
    // B's first LISTEN's flush, its bump held (l2/fleet_lease.hpp).
    f.b.l2.invalidate_held();
    f.b.svc.invalidate_first_level("route:overview", cache::invalidation::hard);
    f.ioc.restart();
    f.ioc.poll();
    CHECK(f.b.l2.pending() == 1);
    CHECK(f.b.l2.stats().bumps == 0);
    // Meanwhile B neither reads nor stores: it fills on its own.
    const auto mgets = f.redis.count("MGET");
    auto during = f.serve(f.b, "u1");
    CHECK(body_of(during) == "fill 1 from b");
    CHECK(f.redis.count("MGET") == mgets);
    CHECK(f.b.l2.stats().stores == 0);

    SECTION("proven: released without a bump, A's copies are hits through B") {
        f.b.l2.release_held(false);
        f.run_until([&] { return f.b.l2.pending() == 0; });
        CHECK(f.b.l2.stats().bumps == 0);
        auto after = f.serve(f.b, "u2");
        CHECK(after.kind == answer_kind::hit_l2);
        CHECK(body_of(after) == "fill 2 from a");
        CHECK(f.b.filler.fills == 1);
    }
    SECTION("no proof: released with a bump, A's copies are unusable") {
        f.b.l2.release_held(true);
        f.run_until([&] { return f.b.l2.pending() == 0; });
        CHECK(f.b.l2.stats().bumps == 1);
        auto after = f.serve(f.b, "u2");
        CHECK(after.kind == answer_kind::miss_stored);
        CHECK(body_of(after) == "fill 2 from b");
    }
    SECTION("an invalidation of all during the hold is bumped, and a release cannot undo it") {
        f.b.svc.invalidate("route:overview", cache::invalidation::hard);
        f.run_until([&] { return f.b.l2.stats().bumps == 1; });
        f.b.l2.release_held(false);
        f.run_until([&] { return f.b.l2.pending() == 0; });
        auto after = f.serve(f.b, "u2");
        CHECK(after.kind == answer_kind::miss_stored);
        CHECK(body_of(after) == "fill 2 from b");
    }
}

TEST_CASE(
    "l2: concurrent misses of one key on two replicas: one fill in the fleet, the other waits a bounded time",
    "[unit]") {
    fixture f;
    f.a.filler.gate = std::make_shared<net::steady_timer>(f.ioc, net::steady_timer::time_point::max());
    auto from_a = std::make_shared<std::optional<cache::cache_answer>>();
    f.start(f.a, "u1", from_a);
    f.run_until([&] { return f.a.filler.fills == 1; });  // A took the lock, and fills
    CHECK(f.redis.count("SET") == 1);
    auto from_b = std::make_shared<std::optional<cache::cache_answer>>();
    const auto started = std::chrono::steady_clock::now();

    SECTION("A's answer comes within fill_lock_wait: B serves it from L2") {
        f.start(f.b, "u1", from_b);
        f.run_until([&] { return f.b.l2.stats().lock_waits == 1; });
        f.a.filler.gate->cancel();
        f.run_until([&] { return from_a->has_value() && from_b->has_value(); });
        CHECK(body_of(**from_b) == "fill 1 from a");
        CHECK((*from_b)->kind == answer_kind::hit_l2);
        CHECK(f.b.filler.fills == 0);
        CHECK(f.b.l2.stats().lock_hits == 1);
    }
    SECTION("A is slower than fill_lock_wait: B fills on its own after it") {
        f.start(f.b, "u1", from_b);
        f.run_until([&] { return from_b->has_value(); });
        const auto waited = std::chrono::steady_clock::now() - started;
        CHECK(body_of(**from_b) == "fill 1 from b");
        CHECK(f.b.l2.stats().lock_waits == 1);
        CHECK(f.b.l2.stats().lock_hits == 0);
        CHECK(waited >= f.l2cfg.fill_lock_wait);
        CHECK(waited < f.l2cfg.fill_lock_wait + 500ms);
        f.a.filler.gate->cancel();
        f.run_until([&] { return from_a->has_value(); });
    }
    SECTION("Redis refuses the lock: B fills at once") {
        f.redis.fail_with = l2::make_error_code(l2::error::unavailable);
        f.redis.fail_only = [](const std::vector<std::string>& a) { return a[0] == "SET"; };
        f.start(f.b, "u1", from_b);
        f.run_until([&] { return from_b->has_value(); });
        CHECK(body_of(**from_b) == "fill 1 from b");
        CHECK(f.b.l2.stats().lock_waits == 0);
        CHECK(std::chrono::steady_clock::now() - started < f.l2cfg.fill_lock_wait);
        f.a.filler.gate->cancel();
        f.run_until([&] { return from_a->has_value(); });
    }
    SECTION("an invalidation frees the key: the lock names the generations read") {
        f.b.svc.invalidate("user:u1", cache::invalidation::hard);
        f.run_until([&] { return f.b.l2.pending() == 0; });
        f.start(f.b, "u1", from_b);
        f.run_until([&] { return from_b->has_value(); });
        CHECK(body_of(**from_b) == "fill 1 from b");
        CHECK(f.b.l2.stats().lock_waits == 0);
        f.a.filler.gate->cancel();
        f.run_until([&] { return from_a->has_value(); });
    }
}
