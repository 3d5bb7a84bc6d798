// Mapping external answers into the agents body; the per-agent config cache.
#include "external/agent_config_cache.hpp"
#include "external/mapping.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

using namespace sidecache;
using namespace sidecache::external;
namespace json = boost::json;
using ms = std::chrono::milliseconds;

namespace {
const char* full_answer = R"({
  "agent_id": "agent_7f3a", "name": "Sales follow-up",
  "conversation_config": {
    "agent": {"first_message": "Hi, this is Ava from Acme.", "language": "en",
              "prompt": {"prompt": "You are ...", "llm": "gpt-4o-mini"}},
    "tts": {"voice_id": "21m00Tcm4TlvDq8ikWAM", "model_id": "eleven_turbo_v2"}},
  "metadata": {"created_at_unix_secs": 1730000000}, "tags": []})";

const char* agents_body =
    R"({"success":true,"data":[)"
    R"({"id":"u1","name":"A","elevenLabsAgentId":"agent_a","performance":{"conversations":1},"elevenLabs":null,"configStatus":"none"},)"
    R"({"id":"u2","name":"B","elevenLabsAgentId":null,"performance":{"conversations":0},"elevenLabs":null,"configStatus":"none"},)"
    R"({"id":"u3","name":"C","elevenLabsAgentId":"agent_c","performance":{"conversations":2},"elevenLabs":null,"configStatus":"none"},)"
    R"({"id":"u4","name":"D","elevenLabsAgentId":"agent_a","performance":{"conversations":3},"elevenLabs":null,"configStatus":"none"}]})";
}  // namespace

TEST_CASE("map_agent_config follows elevenlabs.md, in order", "[unit]") {
    auto mapped = parse_agent_config(full_answer);
    REQUIRE(mapped.has_value());
    CHECK(json::serialize(*mapped) ==
          R"({"name":"Sales follow-up","voiceId":"21m00Tcm4TlvDq8ikWAM","language":"en",)"
          R"("firstMessage":"Hi, this is Ava from Acme.","llm":"gpt-4o-mini"})");
}

TEST_CASE("absent fields map to null", "[unit]") {
    SECTION("no tts, no prompt") {
        auto mapped = parse_agent_config(R"({"name":"X","conversation_config":{"agent":{"language":"fr"}}})");
        REQUIRE(mapped.has_value());
        CHECK(json::serialize(*mapped) ==
              R"({"name":"X","voiceId":null,"language":"fr","firstMessage":null,"llm":null})");
    }
    SECTION("a path through a non-object") {
        auto mapped = parse_agent_config(R"({"conversation_config":"oops"})");
        REQUIRE(mapped.has_value());
        CHECK(json::serialize(*mapped) ==
              R"({"name":null,"voiceId":null,"language":null,"firstMessage":null,"llm":null})");
    }
    SECTION("not an object, not JSON") {
        CHECK_FALSE(parse_agent_config("[1,2]").has_value());
        CHECK_FALSE(parse_agent_config("<html>").has_value());
        CHECK_FALSE(parse_agent_config("").has_value());
    }
}

TEST_CASE("collect_agent_ids: distinct ids in order, nulls skipped", "[unit]") {
    auto ids = collect_agent_ids(json::parse(agents_body));
    CHECK(ids == std::vector<std::string>{"agent_a", "agent_c"});
    CHECK(collect_agent_ids(json::parse(R"({"success":false,"error":{}})")).empty());
    CHECK(collect_agent_ids(json::parse("[]")).empty());
}

TEST_CASE("apply_outcomes fills elevenLabs and configStatus in place", "[unit]") {
    json::value body = json::parse(agents_body);
    json::object cfg = *parse_agent_config(full_answer);
    std::unordered_map<std::string, agent_outcome> outcomes;
    SECTION("all ok: not degraded, keys keep their order") {
        outcomes["agent_a"] = {config_status::ok, cfg};
        outcomes["agent_c"] = {config_status::missing, std::nullopt};
        CHECK_FALSE(apply_outcomes(body, outcomes));
        CHECK(json::serialize(body.at("data").at(0)) ==
              R"({"id":"u1","name":"A","elevenLabsAgentId":"agent_a","performance":{"conversations":1},)"
              R"("elevenLabs":{"name":"Sales follow-up","voiceId":"21m00Tcm4TlvDq8ikWAM","language":"en",)"
              R"("firstMessage":"Hi, this is Ava from Acme.","llm":"gpt-4o-mini"},"configStatus":"ok"})");
        CHECK(body.at("data").at(1).at("configStatus") == "none");
        CHECK(body.at("data").at(1).at("elevenLabs").is_null());
        CHECK(body.at("data").at(2).at("configStatus") == "missing");
        CHECK(body.at("data").at(2).at("elevenLabs").is_null());
        CHECK(body.at("data").at(3).at("configStatus") == "ok");  // same id, same answer
    }
    SECTION("stale serves the config and degrades") {
        outcomes["agent_a"] = {config_status::stale, cfg};
        outcomes["agent_c"] = {config_status::ok, cfg};
        CHECK(apply_outcomes(body, outcomes));
        CHECK(body.at("data").at(0).at("configStatus") == "stale");
        CHECK(body.at("data").at(0).at("elevenLabs").at("llm") == "gpt-4o-mini");
    }
    SECTION("an id without an outcome is unavailable") {
        outcomes["agent_a"] = {config_status::ok, cfg};
        CHECK(apply_outcomes(body, outcomes));
        CHECK(body.at("data").at(2).at("configStatus") == "unavailable");
        CHECK(body.at("data").at(2).at("elevenLabs").is_null());
    }
    SECTION("agents without the keys get them appended") {
        json::value b = json::parse(R"({"success":true,"data":[{"id":"u9","elevenLabsAgentId":null}]})");
        CHECK_FALSE(apply_outcomes(b, outcomes));
        CHECK(
            json::serialize(b) ==
            R"({"success":true,"data":[{"id":"u9","elevenLabsAgentId":null,"elevenLabs":null,"configStatus":"none"}]})");
    }
}

// Issue 14: every cache in the process has a bound.
TEST_CASE("agent_config_cache: at most max_entries agents, useless ones dropped first", "[unit]") {
    agent_config_cache cache(ms{1'000}, ms{10'000}, 3);
    const auto t0 = agent_config_cache::time_point{} + std::chrono::hours{1};
    cache.store_found("old", json::object{{"name", "O"}}, t0);
    cache.store_missing("gone", t0 + ms{5'000});
    cache.store_found("live", json::object{{"name", "L"}}, t0 + ms{9'000});
    CHECK(cache.size() == 3);
    // At t0 + 10.5 s "old" is past max_stale and "gone" past its ttl: both go.
    const auto t1 = t0 + ms{10'500};
    cache.store_found("new", json::object{{"name", "N"}}, t1);
    CHECK(cache.size() == 2);
    CHECK(cache.fresh("new", t1));
    CHECK(cache.last_good("live", t1));
    // Every entry useful: one is forgotten per new agent, never more than 3 kept.
    for (int i = 0; i < 100; ++i) cache.store_found("a" + std::to_string(i), json::object{}, t1);
    CHECK(cache.size() == 3);
    CHECK(cache.fresh("a99", t1));
    // Storing a known agent at the bound forgets nobody.
    cache.store_found("a99", json::object{{"name", "again"}}, t1);
    CHECK(cache.size() == 3);
}

TEST_CASE("agent_config_cache: ttl, last good up to max_stale, invalidation", "[unit]") {
    agent_config_cache cache(ms{1'000}, ms{10'000});
    const auto t0 = agent_config_cache::time_point{} + std::chrono::hours{1};
    json::object cfg{{"name", "A"}};
    CHECK_FALSE(cache.fresh("agent_a", t0));
    CHECK_FALSE(cache.last_good("agent_a", t0));
    cache.store_found("agent_a", cfg, t0);

    SECTION("fresh within the ttl") {
        auto f = cache.fresh("agent_a", t0 + ms{999});
        REQUIRE(f);
        CHECK(f->found);
        CHECK(f->config == cfg);
        CHECK_FALSE(cache.fresh("agent_a", t0 + ms{1'000}));
    }
    SECTION("last good up to max_stale") {
        CHECK(cache.last_good("agent_a", t0 + ms{9'999}) == cfg);
        CHECK_FALSE(cache.last_good("agent_a", t0 + ms{10'000}));
    }
    SECTION("invalidate: refetch, but still servable as stale") {
        CHECK(cache.invalidate("agent_a"));
        CHECK_FALSE(cache.fresh("agent_a", t0 + ms{1}));
        CHECK(cache.last_good("agent_a", t0 + ms{1}) == cfg);
        CHECK_FALSE(cache.invalidate("agent_unknown"));
        cache.store_found("agent_a", json::object{{"name", "B"}}, t0 + ms{2});
        REQUIRE(cache.fresh("agent_a", t0 + ms{3}));
        CHECK(cache.fresh("agent_a", t0 + ms{3})->config.at("name") == "B");
    }
    SECTION("invalidate_all: every agent refetched, still servable as stale") {
        cache.store_found("agent_b", json::object{{"name", "B"}}, t0);
        CHECK(cache.invalidate_all() == 2);
        CHECK_FALSE(cache.fresh("agent_a", t0 + ms{1}));
        CHECK_FALSE(cache.fresh("agent_b", t0 + ms{1}));
        CHECK(cache.last_good("agent_a", t0 + ms{1}) == cfg);
        cache.store_found("agent_a", json::object{{"name", "B"}}, t0 + ms{2});
        REQUIRE(cache.fresh("agent_a", t0 + ms{3}));
        CHECK(cache.fresh("agent_a", t0 + ms{3})->config.at("name") == "B");
    }
    SECTION("a 404 is remembered and drops the old configuration") {
        cache.store_missing("agent_a", t0 + ms{5});
        auto f = cache.fresh("agent_a", t0 + ms{6});
        REQUIRE(f);
        CHECK_FALSE(f->found);
        CHECK_FALSE(cache.last_good("agent_a", t0 + ms{6}));
    }
}
