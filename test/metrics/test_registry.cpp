#include "metrics/registry.hpp"

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <stdexcept>
#include <thread>
#include <vector>

using namespace sidecache::metrics;

TEST_CASE("a small registry renders the exact Prometheus text [unit]") {
    registry r;
    auto hits = r.add_counter("sidecache_hits_total", "Fresh answers.", {{"route", "overview"}});
    auto misses = r.add_counter("sidecache_hits_total", "Fresh answers.", {{"route", "agents"}});
    auto entries = r.add_gauge("sidecache_entries", "Entries stored now.");
    r.add_gauge_fn("sidecache_max_bytes", "The byte bound.", {}, [] { return 1048576.0; });
    auto latency = r.add_histogram("sidecache_fill_duration_seconds", "Fill time.", {{"source", "postgres"}},
                                   {0.01, 0.1, 1});
    hits.inc();
    hits.inc(2);
    misses.inc();
    entries.set(7);
    entries.add(-2);
    latency.observe(0.005);
    latency.observe(0.05);
    latency.observe(0.1);  // a bound is inclusive: le="0.1"
    latency.observe(3);

    CHECK(r.prometheus_text() ==
          "# HELP sidecache_hits_total Fresh answers.\n"
          "# TYPE sidecache_hits_total counter\n"
          "sidecache_hits_total{route=\"overview\"} 3\n"
          "sidecache_hits_total{route=\"agents\"} 1\n"
          "# HELP sidecache_entries Entries stored now.\n"
          "# TYPE sidecache_entries gauge\n"
          "sidecache_entries 5\n"
          "# HELP sidecache_max_bytes The byte bound.\n"
          "# TYPE sidecache_max_bytes gauge\n"
          "sidecache_max_bytes 1048576\n"
          "# HELP sidecache_fill_duration_seconds Fill time.\n"
          "# TYPE sidecache_fill_duration_seconds histogram\n"
          "sidecache_fill_duration_seconds_bucket{source=\"postgres\",le=\"0.01\"} 1\n"
          "sidecache_fill_duration_seconds_bucket{source=\"postgres\",le=\"0.1\"} 3\n"
          "sidecache_fill_duration_seconds_bucket{source=\"postgres\",le=\"1\"} 3\n"
          "sidecache_fill_duration_seconds_bucket{source=\"postgres\",le=\"+Inf\"} 4\n"
          "sidecache_fill_duration_seconds_sum{source=\"postgres\"} 3.155\n"
          "sidecache_fill_duration_seconds_count{source=\"postgres\"} 4\n");
}

TEST_CASE("label values and help text are escaped [unit]") {
    CHECK(escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
    registry r;
    r.add_counter("sidecache_odd_total", "Back\\slash and\nnewline.", {{"path", "/x\"y\\z\n"}}).inc();
    CHECK(r.prometheus_text() ==
          "# HELP sidecache_odd_total Back\\\\slash and\\nnewline.\n"
          "# TYPE sidecache_odd_total counter\n"
          "sidecache_odd_total{path=\"/x\\\"y\\\\z\\n\"} 1\n");
}

TEST_CASE("values are formatted as Prometheus reads them [unit]") {
    CHECK(format_value(0) == "0");
    CHECK(format_value(12345678901) == "12345678901");
    CHECK(format_value(-3) == "-3");
    CHECK(format_value(0.25) == "0.25");
    CHECK(format_value(1.0 / 0.0) == "+Inf");
    CHECK(format_value(-1.0 / 0.0) == "-Inf");
    CHECK(format_value(0.0 / 0.0) == "NaN");
}

TEST_CASE("/stats JSON is rendered from the same series [unit]") {
    registry r;
    auto hits = r.add_counter("sidecache_cache_hits_total", "Hits.", {{"route", "overview"}},
                              {"cache", "routes", "overview", "hits"});
    r.add_flag("sidecache_listener_up", "LISTENing.", {}, [] { return true; }, {"invalidation", "listening"});
    r.add_json({"invalidation", "channel"}, [] { return boost::json::value("sidecache_changes"); });
    r.add_gauge_fn("sidecache_heartbeat_age_seconds", "Age.", {}, [] { return 1.5; },
                   {"invalidation", "heartbeat", "age_seconds"});
    r.add_counter("sidecache_not_in_json_total", "Only in /metrics.");
    hits.inc(4);
    CHECK(boost::json::serialize(r.json()) ==
          R"({"cache":{"routes":{"overview":{"hits":4}}},)"
          R"("invalidation":{"listening":true,"channel":"sidecache_changes","heartbeat":{"age_seconds":1.5E0}}})");
}

TEST_CASE("a wrong declaration is refused at start-up [unit]") {
    registry r;
    r.add_counter("sidecache_x_total", "X.", {{"route", "a"}});
    CHECK_THROWS_AS(r.add_counter("sidecache_x_total", "X.", {{"route", "a"}}), std::logic_error);
    CHECK_THROWS_AS(r.add_gauge("sidecache_x_total", "X.", {{"route", "b"}}), std::logic_error);
    CHECK_THROWS_AS(r.add_counter("sidecache-bad", "X."), std::logic_error);
    CHECK_THROWS_AS(r.add_counter("sidecache_y_total", "Y.", {{"le", "1"}}), std::logic_error);
    CHECK_THROWS_AS(r.add_counter("sidecache_y_total", "Y.", {{"__name", "1"}}), std::logic_error);
    CHECK_THROWS_AS(r.add_histogram("sidecache_h_seconds", "H.", {}, {1, 0.5}), std::logic_error);
}

TEST_CASE("counters added from many threads sum exactly [unit]") {
    registry r;
    auto c = r.add_counter("sidecache_many_total", "Many.");
    auto h = r.add_histogram("sidecache_many_seconds", "Many.", {}, {1});
    std::vector<std::thread> threads;
    for (int t = 0; t < 12; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) {
                c.inc();
                h.observe(0.5);
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(c.value() == 120000);
    const auto text = r.prometheus_text();
    CHECK(text.find("sidecache_many_total 120000\n") != std::string::npos);
    CHECK(text.find("sidecache_many_seconds_count 120000\n") != std::string::npos);
    CHECK(text.find("sidecache_many_seconds_sum 60000\n") != std::string::npos);
}
