// Cold enrichment of an agents answer against the ElevenLabs mock: the
// sidecar's external::client (parallel, retried, deadline-bound) versus the
// legacy's way (one agent after the other, one try each, 10 s timeout).
//
//   enrich_bench --port P --agents N [--runs R] [--mode client|sequential]
//                [--concurrency C] [--deadline-ms D]
//
// Prints one line: mode agents runs p50_ms max_ms ok degraded requests_per_run.
// Every run uses a new client: no configuration is cached (cold).
#include "external/client.hpp"
#include "external/http.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace net = boost::asio;
namespace json = boost::json;
using namespace sidecache;
using namespace sidecache::external;
using clock_type = std::chrono::steady_clock;

namespace {

std::string agents_body(int n, int run) {
    json::array data;
    for (int i = 0; i < n; ++i) {
        json::object a;
        a["id"] = "agent-row-" + std::to_string(i);
        // Distinct ids per run, so the mock's per-agent state does not carry over.
        a["elevenLabsAgentId"] = "agent_bench_" + std::to_string(run) + "_" + std::to_string(i);
        a["elevenLabs"] = nullptr;
        a["configStatus"] = "none";
        data.push_back(std::move(a));
    }
    return json::serialize(json::object{{"success", true}, {"data", std::move(data)}});
}

// The legacy's loop: each agent in turn, a single try with a 10 s timeout.
net::awaitable<std::pair<int, int>> sequential(external::http_client& http, int n, int run) {
    int ok = 0, failed = 0;
    for (int i = 0; i < n; ++i) {
        auto a = co_await http.get(
            "/v1/convai/agents/agent_bench_" + std::to_string(run) + "_" + std::to_string(i),
            clock_type::now() + std::chrono::seconds(10));
        (a.outcome == try_outcome::ok ? ok : failed) += 1;
    }
    co_return std::pair{ok, failed};
}

}  // namespace

int main(int argc, char** argv) {
    int port = 0, agents = 10, runs = 5, concurrency = 64, deadline_ms = 800;
    std::string mode = "client";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--port")
            port = std::atoi(v.c_str());
        else if (k == "--agents")
            agents = std::atoi(v.c_str());
        else if (k == "--runs")
            runs = std::atoi(v.c_str());
        else if (k == "--mode")
            mode = v;
        else if (k == "--concurrency")
            concurrency = std::atoi(v.c_str());
        else if (k == "--deadline-ms")
            deadline_ms = std::atoi(v.c_str());
        else {
            std::fprintf(stderr, "unknown option %s\n", k.c_str());
            return 2;
        }
    }
    if (port <= 0) {
        std::fprintf(stderr, "--port of the mock is required\n");
        return 2;
    }

    conf::external_config cfg;
    cfg.url.scheme = "http";
    cfg.url.host = "127.0.0.1";
    cfg.url.port = static_cast<std::uint16_t>(port);
    cfg.api_key = std::getenv("ELEVENLABS_API_KEY") ? std::getenv("ELEVENLABS_API_KEY") : "";
    cfg.concurrency = static_cast<std::size_t>(concurrency);
    cfg.deadline = std::chrono::milliseconds(deadline_ms);

    static int run_base =
        static_cast<int>(std::chrono::system_clock::now().time_since_epoch().count() % 1000000);
    std::vector<double> times;
    long ok = 0, degraded = 0;
    for (int r = 0; r < runs; ++r) {
        net::io_context ioc;
        const int run = run_base + r;
        const auto start = clock_type::now();
        if (mode == "sequential") {
            auto c = cfg;
            c.max_connections = 1;
            external::http_client http(c);
            auto f = net::co_spawn(ioc, sequential(http, agents, run), net::use_future);
            ioc.run();
            auto [o, failed] = f.get();
            ok += o;
            degraded += failed;
        } else {
            external::client client(cfg);
            auto f = net::co_spawn(
                ioc,
                client.enrich(agents_body(agents, run), client.deadline_for(retry_mode::foreground),
                              retry_mode::foreground),
                net::use_future);
            ioc.run();
            auto result = f.get();
            auto body = json::parse(result.body);
            for (const auto& a : body.at("data").as_array())
                (a.at("configStatus") == "ok" ? ok : degraded) += 1;
        }
        times.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - start).count());
    }
    std::sort(times.begin(), times.end());
    std::printf("%s agents=%d runs=%d p50_ms=%.1f max_ms=%.1f ok=%ld degraded=%ld\n", mode.c_str(), agents,
                runs, times[times.size() / 2], times.back(), ok, degraded);
    return 0;
}
