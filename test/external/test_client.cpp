// The external client against the ElevenLabs mock (test/mocks/elevenlabs.js),
// spawned per test with node on a kernel-chosen port.
#include "external/client.hpp"
#include "external/external_test_support.hpp"
#include "support/child_process.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <optional>
#include <string>
#include <vector>

using namespace sidecache;
using namespace sidecache::external;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using ms = std::chrono::milliseconds;
using clock_type = std::chrono::steady_clock;

namespace {

// The mock as a child process; SIGTERMed on destruction.
class mock_process {
public:
    // Starts it; port() is 0 when node or the script is missing (START_MOCK fails).
    explicit mock_process(int latency_ms) {
        const std::string script = std::string(SIDECACHE_SOURCE_DIR) + "/test/mocks/elevenlabs.js";
        if (!std::filesystem::exists(script)) return;
        server_.emplace("'" + script + "' --port 0 --api-key test-key --latency-ms " +
                        std::to_string(latency_ms) + " --jitter-ms 0");
    }
    std::uint16_t port() const { return server_ ? server_->port() : 0; }

    // A control call on the mock (synchronous).
    json::value call(http::verb verb, const std::string& target, const std::string& body = {}) const {
        net::io_context ioc;
        beast::tcp_stream stream(ioc);
        stream.expires_after(std::chrono::seconds(5));
        stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port()));
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, "127.0.0.1");
        req.set(http::field::content_type, "application/json");
        req.body() = body;
        req.prepare_payload();
        http::write(stream, req);
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        http::read(stream, buffer, res);
        return json::parse(res.body());
    }
    void configure(const std::string& patch) const { call(http::verb::post, "/__mock/config", patch); }
    std::int64_t requests() const {
        return call(http::verb::get, "/__mock/stats").at("requests").to_number<std::int64_t>();
    }
    // The most requests it had in flight at once since its start or reset.
    std::int64_t max_in_flight() const {
        return call(http::verb::get, "/__mock/stats").at("maxInFlight").to_number<std::int64_t>();
    }

private:
    std::optional<test::node_server> server_;
};

// Without node the test fails, unless SIDECACHE_SKIP_NODE=1 asks to skip.
#define START_MOCK(name, latency)                                                   \
    mock_process name(latency);                                                     \
    if (name.port() == 0) {                                                         \
        if (!sidecache::test::node_stand_ins_available(SIDECACHE_SOURCE_DIR)) return; \
        FAIL("the ElevenLabs stand-in did not start (test/mocks/elevenlabs.js)");   \
    }

conf::external_config config_for(const mock_process& mock) {
    conf::external_config c;
    c.url.scheme = "http";
    c.url.host = "127.0.0.1";
    c.url.port = mock.port();
    c.url.text = "http://127.0.0.1:" + std::to_string(mock.port());
    c.api_key = "test-key";
    c.concurrency = 64;
    c.try_timeout = ms{400};
    c.deadline = ms{800};
    c.breaker.cool_down = ms{1'000};
    return c;
}

// For the tests that count requests and are not about timeouts: room for a
// loaded machine, where a try past 400 ms would be retried and counted twice
// (39 requests for 20 seen at load 10).
conf::external_config roomy_config_for(const mock_process& mock) {
    auto c = config_for(mock);
    c.try_timeout = ms{2'000};
    c.deadline = ms{4'000};
    return c;
}

std::vector<std::string> ids(const std::string& prefix, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
    return out;
}

// An agents body as the db fill makes it; "" stands for a null id.
std::string agents_body(const std::vector<std::string>& el_ids) {
    json::array data;
    int i = 0;
    for (const auto& id : el_ids) {
        json::object a;
        a["id"] = "00000000-0000-0000-0000-" + std::to_string(100000000000 + i++);
        a["name"] = "Agent";
        a["elevenLabsAgentId"] = id.empty() ? json::value(nullptr) : json::value(id);
        a["performance"] = json::object{{"conversations", 0}};
        a["elevenLabs"] = nullptr;
        a["configStatus"] = "none";
        data.push_back(std::move(a));
    }
    return json::serialize(json::object{{"success", true}, {"data", std::move(data)}});
}

template <class T>
T run(net::io_context& ioc, net::awaitable<T> op) {
    auto f = net::co_spawn(ioc, std::move(op), net::use_future);
    ioc.restart();
    ioc.run();
    return f.get();
}

struct timed {
    enrich_result result;
    ms elapsed;
    json::value body;
    // configStatus of each agent, in order.
    std::vector<std::string> statuses() const {
        std::vector<std::string> out;
        for (const auto& a : body.at("data").as_array()) out.emplace_back(a.at("configStatus").as_string());
        return out;
    }
    std::size_t count(std::string_view status) const {
        auto s = statuses();
        return static_cast<std::size_t>(std::count(s.begin(), s.end(), status));
    }
};

timed enrich_now(net::io_context& ioc, external::client& client, const std::string& body,
                 retry_mode mode = retry_mode::foreground) {
    const auto start = clock_type::now();
    auto r = run(ioc, client.enrich(body, client.deadline_for(mode), mode));
    timed t{r, std::chrono::duration_cast<ms>(clock_type::now() - start), {}};
    t.body = json::parse(t.result.body);
    return t;
}

}  // namespace

TEST_CASE("20 agents at 200 ms: one round trip, 20 requests, mapped as the mock answers", "[integration]") {
    START_MOCK(mock, 200);
    net::io_context ioc;
    external::client client(roomy_config_for(mock));
    auto el = ids("agent_a", 18);
    el.push_back("agent_gone_1");
    el.push_back("agent_partial_1");
    el.insert(el.begin() + 3, "");  // no ElevenLabs id: no call
    const auto body = agents_body(el);

    auto t = enrich_now(ioc, client, body);
    // One round trip: all 20 were at the mock at once. The time says so
    // too: one after another would take 20 x 200 ms; the bound leaves a busy
    // machine room (370 ms seen at load 10 against 300 ms before), not a
    // sanitizer's slowdown.
    CHECK(mock.max_in_flight() == 20);
#ifndef SIDECACHE_SANITIZED
    CHECK(t.elapsed < ms{1000});
#endif
    CHECK(mock.requests() == 20);
    CHECK_FALSE(t.result.degraded);
    CHECK(t.result.agent_ids.size() == 20);
    CHECK(t.count("ok") == 19);
    CHECK(t.count("missing") == 1);
    CHECK(t.count("none") == 1);
    const auto& data = t.body.at("data").as_array();
    CHECK(data.at(3).at("elevenLabs").is_null());
    CHECK(data.at(3).at("configStatus") == "none");
    CHECK(data.at(19).at("configStatus") == "missing");
    CHECK(data.at(19).at("elevenLabs").is_null());
    // The mapped configuration is the mock's answer for that id.
    const auto& a0 = data.at(0).at("elevenLabs").as_object();
    CHECK(a0.at("name").as_string().size() > 3);
    CHECK(a0.at("voiceId").as_string().size() == 20);
    CHECK(a0.at("language").is_string());
    CHECK(a0.at("firstMessage").as_string().starts_with("Hi, this is "));
    CHECK(a0.at("llm").is_string());
    const auto& partial = data.at(20).at("elevenLabs").as_object();
    CHECK(partial.at("firstMessage").is_null());
    CHECK(partial.at("llm").is_null());
    CHECK(partial.at("voiceId").is_string());
    // Keys keep their order: elevenLabs and configStatus stay last.
    auto it = data.at(0).as_object().end();
    CHECK((it - 1)->key() == "configStatus");
    CHECK((it - 2)->key() == "elevenLabs");

    SECTION("a second answer comes from the per-agent cache: no request") {
        auto again = enrich_now(ioc, client, body);
        CHECK(mock.requests() == 20);
        CHECK(again.elapsed < ms{250});  // no request made (the count above); bound loose for sanitizers
        CHECK(again.result.body == t.result.body);
    }
    SECTION("invalidating one agent refetches that one only") {
        CHECK(client.invalidate("agent_a5"));
        auto again = enrich_now(ioc, client, body);
        CHECK(mock.requests() == 21);
        CHECK(again.count("ok") == 19);
    }
    SECTION("invalidating all agents refetches every one") {
        CHECK(client.invalidate_all() == 20);
        auto again = enrich_now(ioc, client, body);
        CHECK(mock.requests() == 40);
        CHECK(again.result.body == t.result.body);
    }
}

TEST_CASE("two fills at once fetch each agent once", "[integration]") {
    START_MOCK(mock, 200);
    net::io_context ioc;
    external::client client(roomy_config_for(mock));
    const auto body = agents_body(ids("agent_s", 10));
    auto deadline = client.deadline_for(retry_mode::foreground);
    auto f1 = net::co_spawn(ioc, client.enrich(body, deadline, retry_mode::foreground), net::use_future);
    auto f2 = net::co_spawn(ioc, client.enrich(body, deadline, retry_mode::foreground), net::use_future);
    ioc.run();
    auto r1 = f1.get(), r2 = f2.get();
    CHECK(mock.requests() == 10);
    CHECK(r1.body == r2.body);
    CHECK_FALSE(r1.degraded);
    CHECK(client.stats().coalesced == 10);
}

TEST_CASE("the first try of every agent fails with 500: retries make them all ok in time", "[integration]") {
    START_MOCK(mock, 200);
    mock.configure(R"({"failFirst":1,"failFirstStatus":500})");
    net::io_context ioc;
    external::client client(roomy_config_for(mock));
    auto t = enrich_now(ioc, client, agents_body(ids("agent_f", 20)));
    CHECK(t.count("ok") == 20);
    CHECK_FALSE(t.result.degraded);  // all in time: before the deadline
    CHECK(mock.requests() == 40);
}

TEST_CASE("429 with Retry-After is honoured", "[integration]") {
    START_MOCK(mock, 20);
    mock.configure(R"({"failFirst":1,"failFirstStatus":429,"retryAfterS":1})");
    net::io_context ioc;
    external::client client(config_for(mock));
    const auto body = agents_body(ids("agent_r", 5));
    SECTION("foreground: 1 s is past the 800 ms deadline, so no retry before it") {
        auto t = enrich_now(ioc, client, body);
        CHECK(t.count("unavailable") == 5);
        CHECK(t.result.degraded);
        CHECK(t.elapsed < ms{700});  // neither the Retry-After second nor the 800 ms deadline
        CHECK(mock.requests() == 5);
    }
    SECTION("background: waits the second, then succeeds") {
        auto t = enrich_now(ioc, client, body, retry_mode::background);
        CHECK(t.count("ok") == 5);
        CHECK(t.elapsed >= ms{1'000});
        CHECK(mock.requests() == 10);
    }
}

TEST_CASE("hanging requests: the answer comes by the deadline, degraded", "[integration]") {
    START_MOCK(mock, 20);
    net::io_context ioc;
    external::client client(config_for(mock));
    const auto body = agents_body(ids("agent_h", 8));
    auto first = enrich_now(ioc, client, body);  // seen once: then "stale"
    REQUIRE(first.count("ok") == 8);
    for (int i = 0; i < 4; ++i) client.invalidate("agent_h" + std::to_string(i));
    mock.configure(R"({"hangRate":1})");
    auto t = enrich_now(ioc, client, agents_body(ids("agent_h", 12)));
    CHECK(t.elapsed >= ms{700});
    CHECK(t.elapsed < ms{1'200});  // the deadline, not the hang: loose for sanitizers and load
    CHECK(t.result.degraded);
    // 4 still fresh in the cache, 4 stale, 4 never seen.
    CHECK(t.count("ok") == 4);
    CHECK(t.count("stale") == 4);
    CHECK(t.count("unavailable") == 4);
    CHECK(t.body.at("data").at(0).at("elevenLabs") == first.body.at("data").at(0).at("elevenLabs"));
}

TEST_CASE("mock down: the breaker opens, answers fast, calls nothing, recovers through one probe",
          "[integration]") {
    START_MOCK(mock, 20);
    net::io_context ioc;
    auto cfg = config_for(mock);
    external::client client(cfg);
    int recoveries = 0;  // on_recovery runs on the io_context run here
    client.on_recovery([&] { ++recoveries; });
    auto seen = ids("agent_b", 5);
    REQUIRE(enrich_now(ioc, client, agents_body(seen)).count("ok") == 5);
    for (const auto& id : seen) client.invalidate(id);
    auto all = seen;
    for (auto& id : ids("agent_n", 5)) all.push_back(id);
    const auto body = agents_body(all);

    mock.configure(R"({"down":true})");
    auto down = enrich_now(ioc, client, body);
    CHECK(down.count("stale") == 5);
    CHECK(down.count("unavailable") == 5);
    CHECK(client.stats().breaker == circuit_breaker::state::open);

    const auto before = mock.requests();
    auto open = enrich_now(ioc, client, body);
    CHECK(open.elapsed < ms{250});  // fast: no request, no wait (the count below)
    CHECK(open.count("stale") == 5);
    CHECK(open.count("unavailable") == 5);
    CHECK(mock.requests() == before);

    mock.configure(R"({"down":false})");
    auto still_open = enrich_now(ioc, client, body);
    CHECK(still_open.elapsed < ms{250});
    CHECK(mock.requests() == before);

    // Wait for the cool-down to end (the breaker's own clock), bounded.
    const auto until = clock_type::now() + cfg.breaker.cool_down + ms{1'000};
    while (client.stats().breaker != circuit_breaker::state::half_open) {
        REQUIRE(clock_type::now() < until);
        net::steady_timer tick(ioc, ms{10});
        tick.wait();
    }
    CHECK(recoveries == 0);
    auto probing = enrich_now(ioc, client, body);
    CHECK(mock.requests() == before + 1);  // one probe, the rest degraded at once
    CHECK(probing.count("ok") == 1);
    CHECK(client.stats().breaker == circuit_breaker::state::closed);
    CHECK(recoveries == 1);  // the probe's success: degraded answers can go

    auto closed = enrich_now(ioc, client, body);
    CHECK(closed.count("ok") == 10);
    CHECK_FALSE(closed.result.degraded);
    CHECK(mock.requests() == before + 10);
    CHECK(recoveries == 1);  // once per recovery, not per success
}

TEST_CASE("while agents are degraded, the recovery probe sees the API's return with no enrich asking",
          "[integration]") {
    START_MOCK(mock, 0);
    net::io_context ioc;
    // The probe on an io_context of its own: enrich_now runs `ioc` until it
    // has no work, which the probe's loop never leaves. Both outlive the
    // client: its connections' sockets belong to them (ASan: a use after
    // free in ~client when probe_ioc went first).
    net::io_context probe_ioc;
    auto cfg = config_for(mock);
    cfg.breaker.cool_down = ms{200};
    external::client client(cfg);
    int recoveries = 0;
    client.on_recovery([&] { ++recoveries; });
    client.start_recovery_probe(probe_ioc.get_executor());
    const auto run_probe_until = [&](clock_type::time_point deadline) {
        while (recoveries == 0 && clock_type::now() < deadline) {
            probe_ioc.restart();
            probe_ioc.run_for(ms{10});
        }
    };

    mock.configure(R"({"down":true})");
    const auto body = agents_body(ids("agent_p", 5));
    REQUIRE(enrich_now(ioc, client, body).result.degraded);
    run_probe_until(clock_type::now() + ms{500});  // trials while down fail
    CHECK(recoveries == 0);
    const auto requests_down = mock.requests();

    mock.configure(R"({"down":false})");
    const auto back = clock_type::now();
    run_probe_until(back + ms{2'000});
    CHECK(recoveries == 1);
    CHECK(clock_type::now() - back < ms{600});  // within cool_down and a probe period
    CHECK(client.stats().breaker == circuit_breaker::state::closed);
    CHECK(mock.requests() > requests_down);
}

TEST_CASE("a body that is not an agents answer comes back unchanged", "[unit]") {
    net::io_context ioc;
    conf::external_config cfg;
    cfg.url.host = "127.0.0.1";
    cfg.url.port = 1;  // never called
    external::client client(cfg);
    for (std::string body :
         {std::string("not json"), std::string(R"({"success":false,"error":{"code":"X"}})")}) {
        auto r = run(
            ioc, client.enrich(body, client.deadline_for(retry_mode::foreground), retry_mode::foreground));
        CHECK(r.body == body);
        CHECK_FALSE(r.degraded);
        CHECK(r.agent_ids.empty());
    }
    CHECK(client.stats().tries == 0);
}

TEST_CASE("at most max_connections at once, kept alive and reused", "[integration]") {
    START_MOCK(mock, 100);
    net::io_context ioc;
    auto cfg = config_for(mock);
    cfg.max_connections = 2;
    external::client client(cfg);
    auto t = enrich_now(ioc, client, agents_body(ids("agent_c", 6)));
    CHECK(t.count("ok") == 6);
    CHECK(mock.requests() == 6);
    // 6 requests of 100 ms over 2 connections: 3 rounds, not 1.
    CHECK(t.elapsed >= ms{290});
    CHECK(t.elapsed < ms{1'000});
    CHECK(client.stats().open_connections == 2);  // both idle in the pool now
}

TEST_CASE("a wrong API key (401) is not retried and leaves agents unavailable", "[integration]") {
    START_MOCK(mock, 20);
    net::io_context ioc;
    auto cfg = config_for(mock);
    cfg.api_key = "wrong";
    external::client client(cfg);
    auto t = enrich_now(ioc, client, agents_body(ids("agent_k", 4)));
    CHECK(t.count("unavailable") == 4);
    CHECK(t.result.degraded);
    CHECK(mock.requests() == 4);
    CHECK(client.stats().breaker == circuit_breaker::state::closed);  // the host answered
}
