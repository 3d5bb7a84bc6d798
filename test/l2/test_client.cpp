// The Redis client against a real Redis: the shared one of scripts/test for
// round trips (keys of this process only), a redis-server of the test's own
// when Redis must die or hang, a silent local acceptor for timeouts.

#include "conf/config.hpp"
#include "conf/values.hpp"
#include "l2/client.hpp"
#include "support/redis_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace net = boost::asio;
using namespace sidecache::l2;
using namespace std::chrono_literals;
using namespace std::string_literals;
using boost::system::result;
using steady = std::chrono::steady_clock;

namespace {

#ifdef SIDECACHE_SANITIZED
constexpr auto timing_margin = 400ms;  // instrumented code, a loaded machine
#else
constexpr auto timing_margin = 100ms;
#endif

// Runs `a` on `ioc` (the client's) to its end.
template <class T>
T run(net::io_context& ioc, net::awaitable<T> a) {
    auto f = net::co_spawn(ioc, std::move(a), net::use_future);
    ioc.restart();
    ioc.run();
    return f.get();
}

result<reply> cmd(net::io_context& ioc, client& c, std::vector<std::string> args) {
    return run(ioc, c.command(std::move(args)));
}

// A key of this process and test on the shared Redis.
std::string key(const std::string& name) {
    return "l2-client-test:" + std::to_string(::getpid()) + ":" + name;
}

client_options options_for(const std::string& url) {
    auto parsed = sidecache::conf::parse_redis_url(url);
    REQUIRE(parsed.has_value());
    auto o = options_from(*parsed);
    // Loopback, but a loaded CI machine: the round-trip tests are not about time.
    o.op_timeout = 2s;
    return o;
}

// The reply of a command that must have reached Redis.
reply ok(const result<reply>& r) {
    INFO((r.has_value() ? std::string() : r.error().message()));
    REQUIRE(r.has_value());
    return *r;
}

std::string bytes_of(const result<reply>& r) {
    REQUIRE(r.has_value());
    INFO(r->str);
    REQUIRE(r->type == reply::kind::string);
    return r->str;
}

// Waits (on the io_context, no sleep) until the breaker lets a call through.
void wait_available(net::io_context& ioc, client& c, std::chrono::milliseconds limit) {
    run(ioc, [&]() -> net::awaitable<void> {
        net::steady_timer t(co_await net::this_coro::executor);
        const auto deadline = steady::now() + limit;
        while (!c.available() && steady::now() < deadline) {
            t.expires_after(2ms);
            co_await t.async_wait(net::use_awaitable);
        }
    }());
    REQUIRE(c.available());
}

}  // namespace

TEST_CASE("SET, GET, MGET, INCR and EVAL round trips keep binary values whole [redis]") {
    auto url = sidecache::test::shared_redis_url();
    if (!url) return;
    net::io_context ioc;
    client c(ioc, options_for(*url));
    const auto k = key("binary"), missing = key("missing"), n = key("counter"), big = key("big");

    const auto value = "a\0b\r\n$-1\r\nc"s;
    auto set = cmd(ioc, c, {"SET", k, value});
    REQUIRE(set.has_value());
    CHECK(set->type == reply::kind::status);
    CHECK(set->str == "OK");
    CHECK(bytes_of(cmd(ioc, c, {"GET", k})) == value);

    auto mget = cmd(ioc, c, {"MGET", k, missing});
    REQUIRE(mget.has_value());
    REQUIRE(mget->type == reply::kind::array);
    REQUIRE(mget->elements.size() == 2);
    CHECK(mget->elements[0].str == value);
    CHECK(mget->elements[1].type == reply::kind::nil);

    (void)cmd(ioc, c, {"DEL", n});
    CHECK(ok(cmd(ioc, c, {"INCR", n})).integer == 1);
    auto two = ok(cmd(ioc, c, {"INCR", n}));
    CHECK(two.type == reply::kind::integer);
    CHECK(two.integer == 2);

    auto eval =
        cmd(ioc, c, {"EVAL", "return {tonumber(ARGV[1]) + 1, redis.call('GET', KEYS[1])}", "1", k, "41"});
    REQUIRE(eval.has_value());
    REQUIRE(eval->type == reply::kind::array);
    REQUIRE(eval->elements.size() == 2);
    CHECK(eval->elements[0].integer == 42);
    CHECK(eval->elements[1].str == value);

    // 1 MiB of every byte value: read back in many socket reads.
    std::string mib(1 << 20, '\0');
    for (std::size_t i = 0; i < mib.size(); ++i) mib[i] = static_cast<char>(i * 7 % 256);
    REQUIRE(cmd(ioc, c, {"SET", big, mib}).has_value());
    CHECK(bytes_of(cmd(ioc, c, {"GET", big})) == mib);

    CHECK(ok(cmd(ioc, c, {"DEL", k, n, big})).integer == 3);
}

TEST_CASE("A server error is a reply of kind error and the connection stays usable [redis]") {
    auto url = sidecache::test::shared_redis_url();
    if (!url) return;
    net::io_context ioc;
    auto o = options_for(*url);
    o.connections = 1;  // the same connection answers after the error
    client c(ioc, o);
    const auto k = key("not-a-number");
    REQUIRE(cmd(ioc, c, {"SET", k, "x"}).has_value());

    auto incr = cmd(ioc, c, {"INCR", k});
    REQUIRE(incr.has_value());
    CHECK(incr->type == reply::kind::error);
    CHECK(incr->str == "ERR value is not an integer or out of range");
    auto unknown = cmd(ioc, c, {"NO-SUCH-COMMAND"});
    REQUIRE(unknown.has_value());
    CHECK(unknown->type == reply::kind::error);

    CHECK(bytes_of(cmd(ioc, c, {"GET", k})) == "x");
    CHECK(c.available());
    (void)cmd(ioc, c, {"DEL", k});
}

TEST_CASE("SELECT on connect: a client of db 1 does not see db 0's keys [redis]") {
    auto url = sidecache::test::shared_redis_url();
    if (!url) return;
    net::io_context ioc;
    auto o0 = options_for(*url);
    auto o1 = o0;
    o1.db = 1;
    client c0(ioc, o0), c1(ioc, o1);
    const auto k = key("db");
    REQUIRE(cmd(ioc, c1, {"SET", k, "one"}).has_value());
    CHECK(ok(cmd(ioc, c0, {"GET", k})).type == reply::kind::nil);
    CHECK(bytes_of(cmd(ioc, c1, {"GET", k})) == "one");
    (void)cmd(ioc, c1, {"DEL", k});
}

TEST_CASE("AUTH on connect: the right password is used, a wrong one fails the command [redis]") {
    auto redis = sidecache::test::own_redis::start();
    if (!redis) return;
    net::io_context ioc;
    {
        client admin(ioc, options_for(redis->url()));
        REQUIRE(cmd(ioc, admin, {"CONFIG", "SET", "requirepass", "s3cret"}).has_value());
    }
    auto good = options_for(redis->url()), bad = good;
    good.password = "s3cret";
    bad.password = "wrong";
    client with_password(ioc, good), with_wrong_one(ioc, bad);
    CHECK(ok(cmd(ioc, with_password, {"SET", "k", "v"})).str == "OK");
    auto refused = cmd(ioc, with_wrong_one, {"GET", "k"});
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == make_error_code(error::server));
}

TEST_CASE("A command to a server that never answers times out within op_timeout [redis][integration]") {
    net::io_context ioc;
    // Listening, never accepting: the kernel completes the connection, nothing answers.
    net::ip::tcp::acceptor silent(ioc, {net::ip::make_address("127.0.0.1"), 0});
    client_options o;
    o.host = "127.0.0.1";
    o.port = silent.local_endpoint().port();
    o.op_timeout = 50ms;
    client c(ioc, o);
    for (int i = 0; i < 2; ++i) {
        const auto start = steady::now();
        auto r = cmd(ioc, c, {"GET", "k"});
        const auto took = steady::now() - start;
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(error::timeout));
        CHECK(took >= 50ms);
        CHECK(took < 50ms + timing_margin);
    }
}

TEST_CASE("A timed-out connection is closed: its late reply never answers the next command [redis]") {
    auto redis = sidecache::test::own_redis::start();
    if (!redis) return;
    net::io_context ioc;
    auto o = options_for(redis->url());
    o.connections = 1;
    o.op_timeout = 100ms;
    client c(ioc, o);
    REQUIRE(cmd(ioc, c, {"SET", "a", "1"}).has_value());
    REQUIRE(cmd(ioc, c, {"SET", "b", "2"}).has_value());

    redis->freeze();
    auto hung = cmd(ioc, c, {"GET", "a"});
    REQUIRE_FALSE(hung.has_value());
    CHECK(hung.error() == make_error_code(error::timeout));
    // Redis now answers "1" to the GET a that timed out, on that connection.
    redis->thaw();
    CHECK(bytes_of(cmd(ioc, c, {"GET", "b"})) == "2");
    CHECK(bytes_of(cmd(ioc, c, {"GET", "a"})) == "1");
}

TEST_CASE("The breaker opens after breaker_failures failures and closes after a probe succeeds [redis]") {
    auto redis = sidecache::test::own_redis::start();
    if (!redis) return;
    net::io_context ioc;
    auto o = options_for(redis->url());
    o.breaker_failures = 3;
    o.breaker_open_for = 200ms;
    client c(ioc, o);
    REQUIRE(cmd(ioc, c, {"SET", "k", "v"}).has_value());
    redis->stop();  // its port now refuses connections

    for (int i = 0; i < 3; ++i) {
        auto r = cmd(ioc, c, {"GET", "k"});
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(error::unavailable));
    }
    CHECK_FALSE(c.available());
    auto refused = cmd(ioc, c, {"GET", "k"});
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == make_error_code(error::breaker_open));

    // The probe fails while Redis is still down: open again at once.
    wait_available(ioc, c, 2s);
    CHECK(cmd(ioc, c, {"GET", "k"}).error() == make_error_code(error::unavailable));
    CHECK(cmd(ioc, c, {"GET", "k"}).error() == make_error_code(error::breaker_open));

    // Redis back (empty): the next probe succeeds and the breaker closes.
    redis->restart();
    wait_available(ioc, c, 2s);
    CHECK(ok(cmd(ioc, c, {"GET", "k"})).type == reply::kind::nil);
    for (int i = 0; i < 5; ++i) CHECK(ok(cmd(ioc, c, {"SET", "k", std::to_string(i)})).str == "OK");
    CHECK(c.available());
}

TEST_CASE("Commands that time out waiting for a busy pool do not open the breaker [redis]") {
    auto redis = sidecache::test::own_redis::start();
    if (!redis) return;
    net::io_context ioc;
    auto o = options_for(redis->url());
    o.connections = 1;
    o.op_timeout = 100ms;
    o.breaker_failures = 2;
    client c(ioc, o);
    REQUIRE(cmd(ioc, c, {"SET", "k", "v"}).has_value());
    redis->freeze();
    // One command times out on the connection (a failure), four waiting for it.
    std::vector<std::future<result<reply>>> results;
    for (int i = 0; i < 5; ++i) {
        std::vector<std::string> args{"GET", "k"};
        results.push_back(net::co_spawn(ioc, c.command(std::move(args)), net::use_future));
    }
    ioc.restart();
    ioc.run();
    for (auto& f : results) CHECK(f.get().error() == make_error_code(error::timeout));
    CHECK(c.available());
    redis->thaw();
    CHECK(bytes_of(cmd(ioc, c, {"GET", "k"})) == "v");
}

TEST_CASE("Commands beyond the pool wait for a free connection [redis]") {
    auto url = sidecache::test::shared_redis_url();
    if (!url) return;
    net::io_context ioc;
    auto o = options_for(*url);
    o.connections = 2;
    client c(ioc, o);
    const auto n = key("queued");
    (void)cmd(ioc, c, {"DEL", n});
    std::vector<std::future<result<reply>>> results;
    for (int i = 0; i < 20; ++i) {
        std::vector<std::string> args{"INCR", n};
        results.push_back(net::co_spawn(ioc, c.command(std::move(args)), net::use_future));
    }
    ioc.restart();
    ioc.run();
    std::vector<long long> seen;
    for (auto& f : results) {
        auto r = f.get();
        REQUIRE(r.has_value());
        seen.push_back(r->integer);
    }
    std::sort(seen.begin(), seen.end());
    for (int i = 0; i < 20; ++i) CHECK(seen[static_cast<std::size_t>(i)] == i + 1);
    (void)cmd(ioc, c, {"DEL", n});
}

TEST_CASE("After close() a command fails at once without calling Redis [redis]") {
    auto url = sidecache::test::shared_redis_url();
    if (!url) return;
    net::io_context ioc;
    client c(ioc, options_for(*url));
    const auto k = key("closed");
    REQUIRE(cmd(ioc, c, {"SET", k, "1"}).has_value());
    c.close();
    auto r = cmd(ioc, c, {"DEL", k});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == make_error_code(error::unavailable));
    client other(ioc, options_for(*url));
    CHECK(bytes_of(cmd(ioc, other, {"GET", k})) == "1");
    (void)cmd(ioc, other, {"DEL", k});
}

TEST_CASE("Two io threads, each with its own client, run commands at once [redis]") {
    auto url = sidecache::test::shared_redis_url();
    if (!url) return;
    const auto n = key("threads");
    {
        net::io_context ioc;
        client c(ioc, options_for(*url));
        (void)cmd(ioc, c, {"DEL", n});
    }
    // Catch2's assertions are not thread-safe: none on the io threads.
    const auto opts = options_for(*url);
    auto work = [&] {
        net::io_context ioc;
        client c(ioc, opts);
        int ok = 0;
        std::vector<std::future<result<reply>>> results;
        for (int i = 0; i < 200; ++i) {
            std::vector<std::string> args{"INCR", n};
            results.push_back(net::co_spawn(ioc, c.command(std::move(args)), net::use_future));
        }
        ioc.run();
        for (auto& f : results) ok += f.get().has_value() ? 1 : 0;
        return ok;
    };
    int a = 0, b = 0;
    std::thread t1([&] { a = work(); }), t2([&] { b = work(); });
    t1.join();
    t2.join();
    CHECK(a == 200);
    CHECK(b == 200);
    net::io_context ioc;
    client c(ioc, options_for(*url));
    CHECK(bytes_of(cmd(ioc, c, {"GET", n})) == "400");
    (void)cmd(ioc, c, {"DEL", n});
}
