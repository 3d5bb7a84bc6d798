// Micro-benchmarks of the cache engine: the hit path (key + lookup + the
// per-response header block), store get/put, tag invalidation, on 1 and 2
// threads with 1 or 16 shards; and the bytes per entry with 100k entries.
//
//   build-cache/bench/cache_bench --benchmark_counters_tabular=true
#include "cache/key.hpp"
#include "cache/service.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <malloc.h>
#include <map>
#include <memory>
#include <mutex>

using namespace sidecache;
using namespace std::chrono_literals;

namespace {

constexpr int users = 1024;
const std::string body(4096, 'x');  // 4 KiB, as in PEERS.md

conf::cache_config make_config(unsigned shards) {
    conf::cache_config c;
    c.shards = shards;
    c.max_bytes = std::size_t{1} << 30;
    for (const char* name : {"overview", "analytics", "agents"}) {
        conf::route_config r;
        r.name = name;
        r.path = std::string("/api/dashboard/") + name;
        r.ttl = 3600s;
        r.utc_day_bound = false;
        c.routes.push_back(r);
    }
    return c;
}

std::string user_id(int i) {
    return fmt::format("0b7c6a4e-2f1d-4c3b-9a8e-{:012d}", i);
}

// A service per shard count, filled with `users` users x 3 routes.
struct world {
    conf::cache_config config;
    cache::service svc;
    std::vector<std::string> ids;

    explicit world(unsigned shards) : config(make_config(shards)), svc(config, sync::real_time()) {
        auto& st = svc.entries();
        for (int u = 0; u < users; ++u) {
            ids.push_back(user_id(u));
            for (std::size_t r = 0; r < 3; ++r) {
                auto key = cache::make_key(config.routes[r].name, ids.back(), "");
                auto bytes = cache::make_response_bytes(
                    key, 200, {{"Content-Type", "application/json; charset=utf-8"}}, body);
                auto e = st.begin_fill();
                st.put(r, ids.back(), bytes, {"agent:" + std::to_string(u % 50)},
                       std::chrono::steady_clock::now() + 3600s, std::chrono::system_clock::now(), e);
                st.end_fill(e);
            }
        }
    }
};

world& world_of(unsigned shards) {
    static std::mutex m;
    static std::map<unsigned, std::unique_ptr<world>> worlds;
    std::lock_guard lock(m);
    auto& w = worlds[shards];
    if (!w) w = std::make_unique<world>(shards);
    return *w;
}

// The whole hit path the proxy runs: key, lookup, LRU touch, render.
void BM_hit(benchmark::State& state) {
    auto& w = world_of(static_cast<unsigned>(state.range(0)));
    int u = state.thread_index() * 7919;
    std::size_t bytes = 0;
    for (auto _ : state) {
        auto& id = w.ids[static_cast<std::size_t>(u++ % users)];
        auto a = w.svc.try_hit({0, id, "", true});
        bytes += a->buffers[2].size();
        benchmark::DoNotOptimize(a);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["body_bytes"] = benchmark::Counter(double(bytes), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_hit)->Arg(1)->Arg(16)->Threads(1)->Threads(2)->UseRealTime();

// Store lookup alone.
void BM_get(benchmark::State& state) {
    auto& w = world_of(static_cast<unsigned>(state.range(0)));
    int u = state.thread_index() * 7919;
    std::vector<std::string> keys;
    for (auto& id : w.ids) keys.push_back(cache::make_key("analytics", id, ""));
    for (auto _ : state) {
        auto i = static_cast<std::size_t>(u++ % users);
        auto found = w.svc.entries().get(1, w.ids[i], keys[i]);
        benchmark::DoNotOptimize(found);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_get)->Arg(1)->Arg(16)->Threads(1)->Threads(2)->UseRealTime();

// Replacing an entry (the buffer is built outside the timed loop).
void BM_put(benchmark::State& state) {
    auto& w = world_of(static_cast<unsigned>(state.range(0)));
    std::vector<cache::response_bytes> prepared;
    for (int u = 0; u < users; ++u)
        prepared.push_back(
            cache::make_response_bytes(cache::make_key("agents", w.ids[static_cast<std::size_t>(u)], ""), 200,
                                       {{"Content-Type", "application/json; charset=utf-8"}}, body));
    int u = state.thread_index() * 7919;
    std::vector<std::string> tags{"agent:1"};
    for (auto _ : state) {
        auto i = static_cast<std::size_t>(u++ % users);
        auto r = w.svc.entries().put(2, w.ids[i], prepared[i], tags, std::chrono::steady_clock::now() + 3600s,
                                     std::chrono::system_clock::now(), UINT64_MAX - 1);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_put)->Arg(1)->Arg(16)->Threads(1)->Threads(2)->UseRealTime();

// Soft invalidation of one user's three entries.
void BM_invalidate(benchmark::State& state) {
    auto& w = world_of(static_cast<unsigned>(state.range(0)));
    std::vector<std::string> tags;
    for (auto& id : w.ids) tags.push_back("user:" + id);
    int u = state.thread_index() * 7919;
    std::size_t hit = 0;
    for (auto _ : state) hit += w.svc.invalidate(tags[static_cast<std::size_t>(u++ % users)]);
    state.SetItemsProcessed(state.iterations());
    state.counters["entries_per_call"] =
        benchmark::Counter(double(hit) / double(state.iterations()), benchmark::Counter::kAvgThreads);
}
BENCHMARK(BM_invalidate)->Arg(1)->Arg(16)->Threads(1)->Threads(2)->UseRealTime();

// Bytes per entry beyond key and body with 100k entries (33,334 users x 3
// routes, 1 KiB bodies): as the cache accounts them (max_bytes) and as
// malloc sees them (mallinfo2, includes allocator headers).
void BM_overhead_100k(benchmark::State& state) {
    constexpr std::size_t n = 100'000;
    for (auto _ : state) {
        auto config = make_config(16);
        std::string small_body(1024, 'y');
        auto before = mallinfo2().uordblks;
        auto svc = std::make_unique<cache::service>(config, sync::real_time());
        auto& st = svc->entries();
        std::size_t key_and_body = 0, heads = 0;
        for (std::size_t i = 0; i < n; ++i) {
            auto route = i % 3;
            auto id = user_id(static_cast<int>(i / 3));
            auto key = cache::make_key(config.routes[route].name, id, "");
            auto bytes = cache::make_response_bytes(
                key, 200, {{"Content-Type", "application/json; charset=utf-8"}}, small_body);
            key_and_body += key.size() + small_body.size();
            heads += bytes.head_size;
            st.put(route, id, bytes, {}, std::chrono::steady_clock::now() + 3600s,
                   std::chrono::system_clock::now(), 1);
        }
        auto after = mallinfo2().uordblks;
        if (st.entries() != n) state.SkipWithError("entries were evicted");
        state.counters["accounted_overhead"] =
            (double(st.bytes()) - double(key_and_body) - double(heads)) / double(n);
        state.counters["malloc_overhead"] =
            (double(after - before) - double(key_and_body) - double(heads)) / double(n);
        state.counters["stored_head"] = double(heads) / double(n);
    }
}
BENCHMARK(BM_overhead_100k)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
