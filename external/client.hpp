#pragma once
// The external agent API client (ElevenLabs): completes a GET /api/agents
// body with each agent's `elevenLabs` configuration and `configStatus`.
//
// - All of an answer's agents are fetched in parallel, at most
//   external.concurrency at a time, each try bounded by external.try_timeout,
//   the whole by the caller's deadline: agents unfinished then degrade to
//   "stale" (last good configuration, up to external.max_stale old) or
//   "unavailable".
// - One fetch per agent id at a time, whoever asks (single flight).
// - Retries per retry profile (foreground while a user waits, background
//   for refreshes), with full-jitter backoff and Retry-After, never past
//   the deadline; never on 4xx other than 429.
// - One circuit breaker for the host: while open no call is made.
// - Per-agent configurations are cached for external.config_ttl.
//
// Thread-safe: enrich() may run on any executor, concurrently.

#include "conf/config.hpp"
#include "external/backoff.hpp"
#include "external/breaker.hpp"
#include "external/mapping.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sidecache::external {

enum class retry_mode {
    foreground,  // a user waits: external.foreground, bounded by the deadline
    background,  // refreshing a stale or degraded entry: external.background
};

struct enrich_result {
    std::string body;                    // the agents body, completed (unchanged if not one)
    std::vector<std::string> agent_ids;  // the distinct elevenLabsAgentIds looked up
    bool degraded = false;               // some agent is "stale" or "unavailable"
};

struct client_stats {
    std::uint64_t tries = 0;            // HTTP requests made to the external API
    std::uint64_t retries = 0;          // of which not the first of their fetch
    std::uint64_t fetches = 0;          // single flights led (each one or more tries)
    std::uint64_t coalesced = 0;        // lookups that joined a flight in progress
    std::uint64_t cache_hits = 0;       // lookups answered by the per-agent cache
    std::uint64_t rejected = 0;         // fetches refused by the open breaker
    std::uint64_t degraded_agents = 0;  // agents answered "stale" or "unavailable"
    circuit_breaker::state breaker = circuit_breaker::state::closed;
    std::uint64_t breaker_opened = 0;  // times the breaker opened
    std::size_t open_connections = 0;
};

class client {
public:
    using clock = std::chrono::steady_clock;

    // Connections, timers and waits are made on the executor of the
    // coroutine that calls enrich() (each io thread keeps its own
    // connections); `rng` draws the backoff jitter.
    explicit client(conf::external_config config, unit_rng rng = random_unit());
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    // The body as the agents fill made it ({"success":true,"data":[...]}),
    // completed. A body that is not JSON or has no data array comes back as is.
    boost::asio::awaitable<enrich_result> enrich(std::string agents_body, clock::time_point deadline,
                                                 retry_mode mode);
    // The same on a parsed body, in place; returns the ids and degradation
    // (enrich_result::body left empty).
    boost::asio::awaitable<enrich_result> enrich_value(boost::json::value& body, clock::time_point deadline,
                                                       retry_mode mode);

    // One agent's outcome, by ElevenLabs agent id.
    boost::asio::awaitable<agent_outcome> agent_config(std::string agent_id, clock::time_point deadline,
                                                       retry_mode mode);

    // now + external.deadline for foreground; for background, long enough for
    // every attempt and backoff of the background profile.
    clock::time_point deadline_for(retry_mode mode) const;

    // The `agent:<id>` tag: by ElevenLabs agent id, or by the agent's own id
    // (`id` in the body) once an enrich has seen it. The next lookup fetches
    // again; the last good configuration stays servable as "stale".
    bool invalidate(std::string_view agent_id);
    // invalidate() for every agent: NOTIFY `all`.
    std::size_t invalidate_all();

    // `recovered` is called (on an io thread, no lock held) when a fetch
    // succeeds after some agent was answered "stale" or "unavailable" since
    // the last call: the API is back, so degraded answers can go. Set before
    // the first enrich.
    void on_recovery(std::function<void()> recovered);
    // Until `ex`'s io_context stops: while agents are degraded, the last one
    // that failed is fetched again every quarter of breaker.cool_down (the
    // breaker admits it as its half-open probe once the cool-down is over),
    // so recovery is seen even when no fill asks the API (every reader is
    // served a cached degraded answer).
    void start_recovery_probe(const boost::asio::any_io_executor& ex);

    client_stats stats() const;
    const conf::external_config& config() const;

    // A reload (conf/reload.hpp): concurrency, try_timeout, deadline, the
    // retry profiles and the breaker's thresholds from `next` on, for the
    // fetches that start after; the breaker keeps its state (its window's
    // counts restart if the window changed). `next` outlives the client
    // (conf::live_config keeps it). The URL, key and pool stay.
    void reconfigure(const conf::external_config& next);

private:
    struct impl;
    static boost::asio::awaitable<void> recovery_probe_loop(std::weak_ptr<impl> weak);
    std::shared_ptr<impl> impl_;
};

}  // namespace sidecache::external
