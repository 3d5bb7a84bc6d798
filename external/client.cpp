#include "external/client.hpp"

#include "external/agent_config_cache.hpp"
#include "external/http.hpp"
#include "external/retry.hpp"
#include "log/logger.hpp"
#include "sync/single_flight.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace sidecache::external {

namespace net = boost::asio;
namespace json = boost::json;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t max_known_agent_ids = 100'000;

// What one single flight came to.
struct fetch_result {
    try_outcome outcome = try_outcome::timeout;
    std::optional<json::object> config;  // mapped, when ok
};

fetch_result make_result(try_outcome outcome, std::optional<json::object> config = std::nullopt) {
    fetch_result r;
    r.outcome = outcome;
    r.config = std::move(config);
    return r;
}

using fetch_flights = sync::single_flight<fetch_result>;

// A path segment: unreserved characters as is, the rest percent-encoded.
std::string encode_segment(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

}  // namespace

struct client::impl {
    conf::external_config config;
    // The settings a reload may change (client::reconfigure); `config` at first.
    std::atomic<const conf::external_config*> live{&config};
    const conf::external_config& settings() const { return *live.load(std::memory_order_acquire); }
    unit_rng rng;
    http_client http;
    agent_config_cache cache;

    mutable std::mutex mutex;  // breaker, known_ids; joining or starting a flight
    circuit_breaker breaker;
    // The fetch in progress of each ElevenLabs agent id, and its joiners.
    fetch_flights flights{sync::real_time()};
    std::unordered_map<std::string, std::string> known_ids;  // agent id -> ElevenLabs agent id

    std::atomic<std::uint64_t> tries{0}, retries{0}, fetches{0}, coalesced{0}, cache_hits{0}, rejected{0},
        degraded{0};

    // Recovery: some agent was degraded since the last successful fetch
    // (then `recovered` is due at the next one); the last agent that was,
    // for probe_recovery(). `last_degraded` under `mutex`.
    std::atomic<bool> degraded_since_success{false};
    std::string last_degraded;
    std::function<void()> recovered;

    impl(conf::external_config c, unit_rng r)
        : config(std::move(c)),
          rng(std::move(r)),
          http(config),
          cache(config.config_ttl, config.max_stale, config.config_cache_entries),
          breaker(config.breaker) {}

    // Reports to the breaker exactly once: failure if the coroutine ends (or
    // is destroyed) before it said otherwise.
    struct breaker_report {
        impl* self;
        bool probe;
        bool done = false;
        breaker_report(impl* s, bool p) : self(s), probe(p) {}
        breaker_report(const breaker_report&) = delete;
        breaker_report& operator=(const breaker_report&) = delete;
        void operator()(bool failure) {
            if (done) return;
            done = true;
            std::lock_guard lock(self->mutex);
            const auto now = clock::now();
            failure ? self->breaker.on_failure(now, probe) : self->breaker.on_success(now, probe);
        }
        ~breaker_report() { (*this)(true); }
    };

    // Tries, with retries per profile, until an answer that settles it or the deadline.
    // The breaker hears of the fetch once, by its final outcome (a try that
    // fails and is retried into a success is no sign of a failing host), and
    // of a half-open probe at once, by that single try.
    net::awaitable<fetch_result> fetch_with_retries(const std::string& agent_id, clock::time_point deadline,
                                                    const conf::retry_profile& profile) {
        const std::string target = "/v1/convai/agents/" + encode_segment(agent_id);
        fetch_result last = make_result(try_outcome::timeout);
        std::optional<breaker_report> fetch_report;  // set by the first admitted non-probe try
        for (unsigned tries = 0;;) {
            const auto now = clock::now();
            if (now >= deadline) co_return last;
            circuit_breaker::admission admission;
            {
                std::lock_guard lock(mutex);
                admission = breaker.admit(now);
            }
            if (admission == circuit_breaker::admission::rejected) {
                ++rejected;
                // The failure that opened it says more than "rejected".
                co_return tries == 0 ? make_result(try_outcome::rejected) : last;
            }
            std::optional<breaker_report> probe_report;
            if (admission == circuit_breaker::admission::probe)
                probe_report.emplace(this, true);
            else if (!fetch_report)
                fetch_report.emplace(this, false);

            http_answer answer = co_await http.get(target, std::min(now + settings().try_timeout, deadline));
            if (tries > 0) ++retries;
            ++tries;
            ++this->tries;
            last = make_result(answer.outcome);
            if (answer.outcome == try_outcome::ok) {
                auto mapped = parse_agent_config(answer.body);
                if (mapped)
                    last.config = std::move(*mapped);
                else
                    last.outcome = try_outcome::bad_response;
            }
            const bool failed = is_host_failure(last.outcome);
            if (probe_report) (*probe_report)(failed);
            if (!is_retryable(last.outcome)) {
                if (fetch_report) (*fetch_report)(failed);
                co_return last;
            }
            const auto left = std::chrono::duration_cast<conf::duration>(deadline - clock::now());
            const auto decision = decide_retry(profile, last.outcome, tries, answer.retry_after, left, rng());
            if (!decision.retry) co_return last;  // fetch_report says failure as it goes
            net::steady_timer timer(co_await net::this_coro::executor);
            timer.expires_after(decision.delay);
            co_await timer.async_wait(use_tuple);
        }
    }

    // The agent's fetch result: from the cache if fresh, else from the flight
    // in progress for it, else from a new flight this call leads. A leader
    // destroyed before it landed lands empty: its joiners see a timeout.
    net::awaitable<fetch_result> fetch_shared(const std::string& agent_id, clock::time_point deadline,
                                              retry_mode mode) {
        fetch_flights::flight_ptr joined;
        std::optional<fetch_flights::leader> lead;
        {
            // A flight lands only after its result is in the cache: a lookup
            // sees one or the other. The lock makes look-then-start one step.
            std::lock_guard lock(mutex);
            joined = flights.find(agent_id);
            if (!joined) {
                if (auto fresh = cache.fresh(agent_id, clock::now())) {
                    ++cache_hits;
                    co_return fresh->found ? make_result(try_outcome::ok, std::move(fresh->config))
                                           : make_result(try_outcome::not_found);
                }
                lead.emplace(std::move(*flights.join_or_start(agent_id).lead));
            }
        }
        if (joined) {
            ++coalesced;
            if (co_await joined->wait(deadline, SIZE_MAX) == sync::join_result::landed && joined->result())
                co_return *joined->result();
            co_return make_result(try_outcome::timeout);
        }

        ++fetches;
        const auto& profile = mode == retry_mode::foreground ? settings().foreground : settings().background;
        fetch_result result = co_await fetch_with_retries(agent_id, deadline, profile);
        if (result.outcome == try_outcome::ok) {
            cache.store_found(agent_id, *result.config, clock::now());
            if (degraded_since_success.exchange(false) && recovered) recovered();
        } else if (result.outcome == try_outcome::not_found) {
            cache.store_missing(agent_id, clock::now());
        }
        lead->land(result);
        co_return result;
    }

    agent_outcome outcome_of(const std::string& agent_id, fetch_result r) {
        agent_outcome o;
        if (r.outcome == try_outcome::ok) {
            o.status = config_status::ok;
            o.config = std::move(r.config);
        } else if (r.outcome == try_outcome::not_found) {
            o.status = config_status::missing;
        } else if (auto good = cache.last_good(agent_id, clock::now())) {
            o.status = config_status::stale;
            o.config = std::move(*good);
        } else {
            o.status = config_status::unavailable;
        }
        if (is_degraded(o.status)) {
            ++degraded;
            std::lock_guard lock(mutex);
            last_degraded = agent_id;
            degraded_since_success = true;
        }
        return o;
    }

    net::awaitable<agent_outcome> lookup(std::string agent_id, clock::time_point deadline, retry_mode mode) {
        fetch_result r = co_await fetch_shared(agent_id, deadline, mode);
        co_return outcome_of(agent_id, std::move(r));
    }

    // One of the fan-out's workers: takes the next id until none is left.
    net::awaitable<void> worker(const std::vector<std::string>& ids, std::vector<agent_outcome>& outcomes,
                                std::atomic<std::size_t>& next, clock::time_point deadline, retry_mode mode) {
        for (std::size_t i; (i = next.fetch_add(1)) < ids.size();) {
            try {
                outcomes[i] = co_await lookup(ids[i], deadline, mode);
            } catch (const std::exception&) {
                // Left "unavailable": one agent's surprise must not sink the answer.
                outcomes[i] = agent_outcome{config_status::unavailable, std::nullopt};
            }
        }
    }

    void remember_ids(const json::value& body) {
        const auto* root = body.if_object();
        const json::array* data = nullptr;
        if (root) {
            auto it = root->find("data");
            if (it != root->end()) data = it->value().if_array();
        }
        if (!data) return;
        std::lock_guard lock(mutex);
        if (known_ids.size() > max_known_agent_ids) known_ids.clear();
        for (const auto& a : *data) {
            const auto* agent = a.if_object();
            if (!agent) continue;
            const auto* id = agent->if_contains("id");
            const auto* el = agent->if_contains("elevenLabsAgentId");
            if (id && id->is_string() && el && el->is_string())
                known_ids[std::string(id->get_string())] = std::string(el->get_string());
        }
    }

    net::awaitable<enrich_result> enrich(json::value& body, clock::time_point deadline, retry_mode mode) {
        enrich_result out;
        out.agent_ids = collect_agent_ids(body);
        remember_ids(body);
        std::vector<agent_outcome> outcomes(out.agent_ids.size());
        if (!out.agent_ids.empty()) {
            auto ex = co_await net::this_coro::executor;
            std::atomic<std::size_t> next{0};
            const std::size_t workers = std::clamp<std::size_t>(settings().concurrency, 1, out.agent_ids.size());
            using op_type = decltype(net::co_spawn(ex, std::declval<net::awaitable<void>>(), net::deferred));
            std::vector<op_type> ops;
            ops.reserve(workers);
            for (std::size_t w = 0; w < workers; ++w)
                ops.push_back(
                    net::co_spawn(ex, worker(out.agent_ids, outcomes, next, deadline, mode), net::deferred));
            // Every worker ends by the deadline on its own (each wait is
            // bounded by it), so waiting for all of them is bounded too.
            co_await net::experimental::make_parallel_group(std::move(ops))
                .async_wait(net::experimental::wait_for_all(), net::use_awaitable);
        }
        std::unordered_map<std::string, agent_outcome> by_id;
        for (std::size_t i = 0; i < outcomes.size(); ++i)
            by_id.emplace(out.agent_ids[i], std::move(outcomes[i]));
        out.degraded = apply_outcomes(body, by_id);
        co_return out;
    }

    // How often start_recovery_probe's loop looks.
    conf::duration probe_period() const {
        return std::max(conf::duration{50}, settings().breaker.cool_down / 4);
    }

    // One look of client::start_recovery_probe: while some agent is degraded,
    // the last one is fetched. One try, foreground profile: a probe that
    // waited out the background backoff would see the API's return late.
    net::awaitable<void> probe_once() {
        std::string agent;
        {
            std::lock_guard lock(mutex);
            if (degraded_since_success) agent = last_degraded;
        }
        if (agent.empty()) co_return;
        co_await fetch_shared(agent, clock::now() + settings().try_timeout, retry_mode::foreground);
    }
};

// The loop of start_recovery_probe. It holds the client's state weakly: it
// ends at the first look after the client is destroyed.
net::awaitable<void> client::recovery_probe_loop(std::weak_ptr<impl> weak) {
    net::steady_timer timer(co_await net::this_coro::executor);
    for (;;) {
        if (auto self = weak.lock())
            timer.expires_after(self->probe_period());
        else
            co_return;
        if (auto [ec] = co_await timer.async_wait(use_tuple); ec) co_return;
        auto self = weak.lock();
        if (!self) co_return;
        co_await self->probe_once();
    }
}


client::client(conf::external_config config, unit_rng rng)
    : impl_(std::make_shared<impl>(std::move(config), std::move(rng))) {}

client::~client() {
    impl_->http.close_idle();
}

net::awaitable<enrich_result> client::enrich(std::string agents_body, clock::time_point deadline,
                                             retry_mode mode) {
    auto self = impl_;
    boost::system::error_code ec;
    json::value body = json::parse(agents_body, ec);
    if (ec || !body.is_object() || !body.get_object().contains("data")) {
        enrich_result unchanged;
        unchanged.body = std::move(agents_body);
        co_return unchanged;
    }
    enrich_result out = co_await self->enrich(body, deadline, mode);
    out.body = json::serialize(body);
    co_return out;
}

net::awaitable<enrich_result> client::enrich_value(json::value& body, clock::time_point deadline,
                                                   retry_mode mode) {
    auto self = impl_;
    co_return co_await self->enrich(body, deadline, mode);
}

net::awaitable<agent_outcome> client::agent_config(std::string agent_id, clock::time_point deadline,
                                                   retry_mode mode) {
    auto self = impl_;
    co_return co_await self->lookup(std::move(agent_id), deadline, mode);
}

client::clock::time_point client::deadline_for(retry_mode mode) const {
    const auto& c = impl_->settings();
    if (mode == retry_mode::foreground) return clock::now() + c.deadline;
    conf::duration total = c.try_timeout * static_cast<long>(std::max(1u, c.background.attempts));
    for (unsigned k = 1; k < c.background.attempts; ++k) total += backoff_ceiling(c.background, k);
    return clock::now() + std::max(total, c.deadline);
}

bool client::invalidate(std::string_view agent_id) {
    std::string id(agent_id);
    {
        std::lock_guard lock(impl_->mutex);
        if (auto it = impl_->known_ids.find(id); it != impl_->known_ids.end()) id = it->second;
    }
    return impl_->cache.invalidate(id);
}

void client::reconfigure(const conf::external_config& next) {
    std::lock_guard lock(impl_->mutex);  // the breaker's
    impl_->breaker.reconfigure(next.breaker);
    impl_->live.store(&next, std::memory_order_release);
}

std::size_t client::invalidate_all() {
    return impl_->cache.invalidate_all();
}

void client::on_recovery(std::function<void()> recovered) {
    impl_->recovered = std::move(recovered);
}

void client::start_recovery_probe(const net::any_io_executor& ex) {
    net::co_spawn(ex, recovery_probe_loop(impl_), [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            // Fills still notice the recovery themselves.
            log::error("external", "the recovery probe stopped", {{"error", x.what()}});
        }
    });
}

client_stats client::stats() const {
    client_stats s;
    s.tries = impl_->tries;
    s.retries = impl_->retries;
    s.fetches = impl_->fetches;
    s.coalesced = impl_->coalesced;
    s.cache_hits = impl_->cache_hits;
    s.rejected = impl_->rejected;
    s.degraded_agents = impl_->degraded;
    {
        std::lock_guard lock(impl_->mutex);
        s.breaker = impl_->breaker.current(clock::now());
        s.breaker_opened = impl_->breaker.times_opened();
    }
    s.open_connections = impl_->http.open_connections();
    return s;
}

const conf::external_config& client::config() const {
    return impl_->config;
}

}  // namespace sidecache::external
