// What the access log costs a request's thread: one record() (format the
// line into the thread's buffer, user hash from the thread's cache), the
// background writer writing to /dev/null meanwhile.
//
//   cmake --build build --target accesslog_bench && build/bench/accesslog_bench

#include "log/access_log.hpp"

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <memory>
#include <string>

namespace {

void BM_record(benchmark::State& state) {
    const int null = ::open("/dev/null", O_WRONLY);
    sidecache::log::access_log_options options;
    options.fd = null;
    auto access = std::make_unique<sidecache::log::access_log>(options);
    const std::string user = "3f2a9c4e-5b1d-4e8f-9a7c-2d6b8e0f1a3c";
    sidecache::log::access_entry e;
    e.method = "GET";
    e.target = "/api/dashboard/analytics?days=7&tz=UTC";
    e.status = 200;
    e.bytes = 4096;
    e.cache = "hit";
    e.user_id = user;
    for (auto _ : state) {
        e.time = std::chrono::system_clock::now();
        e.duration = std::chrono::microseconds(40);
        access->record(e);
    }
    state.counters["dropped"] = static_cast<double>(access->dropped());
    access.reset();  // its last flush, before /dev/null is closed
    ::close(null);
}
BENCHMARK(BM_record);

// A user seen for the first time: the HMAC-SHA256 itself.
void BM_user_hash(benchmark::State& state) {
    sidecache::log::access_log_options options;
    options.fd = -1;
    sidecache::log::access_log access(options);
    const std::string user = "3f2a9c4e-5b1d-4e8f-9a7c-2d6b8e0f1a3c";
    for (auto _ : state) benchmark::DoNotOptimize(access.user_hash(user));
}
BENCHMARK(BM_user_hash);

}  // namespace

BENCHMARK_MAIN();
