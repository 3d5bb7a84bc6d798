#include "proxy/module_metrics.hpp"

#include "cache/midnight_refill.hpp"
#include "cache/service.hpp"
#include "db/pool.hpp"
#include "external/client.hpp"
#include "l2/second_level.hpp"
#include "proxy/metric_help.hpp"
#include "proxy/warmup.hpp"

#include <boost/json/value.hpp>
#include <fmt/format.h>

#include <atomic>
#include <string>
#include <tuple>

#ifndef SIDECACHE_VERSION
#define SIDECACHE_VERSION "unknown"
#endif

namespace sidecache::proxy {

namespace {

using metrics::json_path;

template <typename T>
double load(const std::atomic<T>& a) {
    return static_cast<double>(a.load(std::memory_order_relaxed));
}

}  // namespace

void declare_build_info(metrics::registry& r) {
    r.add_gauge_fn("sidecache_build_info", "The running sidecache's version (always 1).",
                   {{"version", SIDECACHE_VERSION}}, [] { return 1.0; });
}

void declare_midnight_metrics(metrics::registry& r, const cache::midnight_refill& refill) {
    const auto& c = refill.stats();
    auto at = [](const char* key) { return json_path{"midnight_refill", key}; };
    r.add_json(at("enabled"), [&refill] { return boost::json::value(refill.enabled()); });
    r.add_counter_fn("sidecache_midnight_refill_runs_total", "Passes of the refill after a UTC midnight ended.", {},
                     [&c] { return load(c.runs); }, at("runs"));
    const std::pair<const char*, const std::atomic<std::uint64_t>*> entries[] = {
        {"selected", &c.selected}, {"refilled", &c.refilled}, {"skipped", &c.skipped}, {"failed", &c.failed}};
    for (const auto& [result, cell] : entries)
        r.add_counter_fn("sidecache_midnight_refill_entries_total",
                         "Entries the refill after midnight picked (selected), then refilled and stored, skipped "
                         "(gone, or a request's fill came first) or failed.",
                         {{"result", result}}, [cell] { return load(*cell); }, at(result));
    r.add_gauge_fn("sidecache_midnight_refill_in_flight", "Refills after midnight running now.", {},
                   [&c] { return load(c.in_flight); }, at("in_flight"));
    r.add_gauge_fn("sidecache_midnight_refill_max_in_flight", "The most refills after midnight at once, ever.", {},
                   [&c] { return load(c.max_in_flight); }, at("max_in_flight"));
    r.add_json(at("last_run_ms"), [&c] { return boost::json::value(c.last_run_ms.load(std::memory_order_relaxed)); });
    r.add_gauge_fn("sidecache_midnight_refill_last_run_seconds",
                   "How long the last refill pass took (-1 before the first).", {},
                   [&c] {
                       const auto ms = c.last_run_ms.load(std::memory_order_relaxed);
                       return ms < 0 ? -1.0 : static_cast<double>(ms) / 1000.0;
                   });
}

void declare_warmup_metrics(metrics::registry& r, const warmup& warm) {
    auto at = [](const char* key) { return json_path{"warmup", key}; };
    r.add_json(at("enabled"), [&warm] { return boost::json::value(warm.enabled()); });
    r.add_flag("sidecache_warmup_running", "A warm-up pass (cache.warmup) runs now.", {},
               [&warm] { return warm.running(); }, at("running"));
    r.add_counter_fn("sidecache_warmup_passes_total", "Warm-up passes run (at start, after a flush).", {},
                     [&warm] { return static_cast<double>(warm.passes()); }, at("passes"));
    r.add_gauge_fn("sidecache_warmup_users", "Users the last warm-up pass read (recently active).", {},
                   [&warm] { return static_cast<double>(warm.users()); }, at("users"));
    r.add_counter_fn("sidecache_warmup_errors_total", "Warm-up passes whose users could not be read.", {},
                     [&warm] { return static_cast<double>(warm.errors()); }, at("errors"));
    const auto& c = warm.fills();
    const std::pair<const char*, const std::atomic<std::uint64_t>*> entries[] = {
        {"selected", &c.selected}, {"filled", &c.refilled}, {"skipped", &c.skipped}, {"failed", &c.failed}};
    for (const auto& [result, cell] : entries)
        r.add_counter_fn("sidecache_warmup_entries_total",
                         "Entries the warm-up picked (selected), then filled and stored, skipped (already "
                         "cached, or a request's fill came first) or failed.",
                         {{"result", result}}, [cell] { return load(*cell); }, at(result));
    r.add_gauge_fn("sidecache_warmup_in_flight", "Warm-up fills running now.", {},
                   [&c] { return load(c.in_flight); }, at("in_flight"));
    r.add_json(at("max_in_flight"), [&c] { return boost::json::value(c.max_in_flight.load()); });
    r.add_json(at("last_run_ms"), [&c] { return boost::json::value(c.last_run_ms.load(std::memory_order_relaxed)); });
}

void declare_cache_metrics(metrics::registry& r, const cache::service& cache, const conf::cache_config& cfg) {
    const auto& table = cache.counters();
    for (std::size_t i = 0; i < table.size(); ++i) {
        const auto& name = cfg.routes[i].name;
        const auto& c = table[i];
        auto at = [&name](const char* key) { return json_path{"cache", "routes", name, key}; };
        // The cache's answers, one series per result, as cache::service counts them.
        const std::pair<const char*, const std::atomic<std::uint64_t>*> results[] = {
            {"hit", &c.hits},           {"miss", &c.misses},         {"stale", &c.stale},
            {"collapsed", &c.coalesced}, {"timeout", &c.timeouts},    {"overloaded", &c.overloaded},
            {"backed_off", &c.backed_off}};
        const char* json_keys[] = {"hits", "misses", "stale", "coalesced", "timeouts", "overloaded", "backed_off"};
        for (std::size_t k = 0; k < std::size(results); ++k) {
            const auto* cell = results[k].second;
            r.add_counter_fn("sidecache_cache_results_total", help::cache_results,
                             {{"route", name}, {"result", results[k].first}}, [cell] { return load(*cell); },
                             at(json_keys[k]));
        }
        const auto route = metrics::label_list{{"route", name}};
        r.add_counter_fn(
            "sidecache_cache_fills_total",
            "Fills started (foreground and background; an answer of the second level is not one).", route,
            [&c] { return load(c.fills); }, at("fills"));
        r.add_counter_fn("sidecache_cache_fill_failures_total", "Fills that failed or answered 5xx.", route,
                         [&c] { return load(c.failed_fills); }, at("failed_fills"));
        r.add_counter_fn("sidecache_cache_fills_not_stored_total",
                         "Fills whose answer was not storable or raced an invalidation.", route,
                         [&c] { return load(c.not_stored); }, at("not_stored"));
        r.add_counter_fn("sidecache_cache_evictions_total", "Entries evicted to stay within cache.max_bytes.",
                         route, [&c] { return load(c.evictions); }, at("evictions"));
        r.add_counter_fn("sidecache_cache_invalidated_entries_total",
                         "Entries hit by an invalidation (soft or hard).", route,
                         [&c] { return load(c.invalidated); }, at("invalidated"));
        r.add_gauge_fn("sidecache_cache_entries", "Entries stored now.", route, [&c] { return load(c.entries); },
                       at("entries"));
        r.add_gauge_fn("sidecache_cache_bytes", "Bytes the stored entries count against cache.max_bytes.", route,
                       [&c] { return load(c.bytes); }, at("bytes"));
    }
    const auto& store = cache.entries();
    r.add_json({"cache", "entries"}, [&store] { return boost::json::value(store.entries()); });
    r.add_json({"cache", "bytes"}, [&store] { return boost::json::value(store.bytes()); });
    r.add_gauge_fn("sidecache_cache_max_bytes", "The bound of the entries' bytes (cache.max_bytes).", {},
                   [max = cfg.max_bytes] { return static_cast<double>(max); }, {"cache", "max_bytes"});
    r.add_json({"cache", "shards"}, [&store] { return boost::json::value(store.shard_count()); });
    r.add_gauge_fn("sidecache_cache_fills_in_flight", "Fills running now.", {},
                   [&cache] { return static_cast<double>(cache.fills_in_flight()); }, {"cache", "fills_in_flight"});
}

void declare_l2_metrics(metrics::registry& r, const l2::second_level_cache& l2) {
    const auto& c = l2.stats();
    auto at = [](const char* key) { return json_path{"l2", key}; };
    using cell = const std::atomic<std::uint64_t>*;
    const std::tuple<const char*, const char*, cell> counters[] = {
        {"hits", "Fills answered by the second level (Redis): no fill ran.", &c.hits},
        {"misses", "Second-level reads that found nothing usable: the fill ran.", &c.misses},
        {"errors", "Redis commands that failed, timed out or were answered with an error.", &c.errors},
        {"timeouts", "Of the errors, the commands past l2.op_timeout.", &c.timeouts},
        {"stores", "Answers stored in the second level.", &c.stores},
        {"bytes_read", "Bytes of values and generations read from Redis.", &c.bytes_read},
        {"bytes_written", "Bytes of commands sent to Redis.", &c.bytes_written},
        {"invalidations", "Generations bumped in Redis (invalidations made there).", &c.bumps},
        {"fill_lock_waits", "Misses that found another replica's fill lock and read L2 for its answer.",
         &c.lock_waits},
        {"fill_lock_hits", "Of the fill lock waits, those that got the answer (no fill here).", &c.lock_hits},
    };
    for (const auto& [name, help, counter] : counters)
        r.add_counter_fn(
            fmt::format("sidecache_l2_{}_total", name), help, {}, [counter] { return load(*counter); },
            at(name));
    r.add_counter_fn(
        "sidecache_l2_rejected_total",
        "Of the misses, values read but not served: another key's, garbled, or of an old generation.", {},
        [&c] { return load(c.rejected); }, at("rejected"));
    r.add_counter_fn(
        "sidecache_l2_skipped_total",
        "Second-level reads not made: the breaker open, or an invalidation not yet made in Redis.", {},
        [&c] { return load(c.skipped); }, at("skipped"));
    const std::pair<const char*, cell> skipped[] = {{"too_large", &c.store_too_large},
                                                    {"invalidated", &c.store_invalidated},
                                                    {"failed", &c.store_failed}};
    for (const auto& [reason, counter] : skipped)
        r.add_counter_fn(
            "sidecache_l2_store_skipped_total",
            "Answers not stored in the second level: larger than l2.max_value_bytes, invalidated since "
            "their fill began, or Redis failed.",
            {{"reason", reason}}, [counter] { return load(*counter); },
            json_path{"l2", "store_skipped", reason});
    r.add_counter_fn(
        "sidecache_l2_invalidation_failures_total",
        "Generation bumps that failed (retried; the second level is skipped for them meanwhile).", {},
        [&c] { return load(c.bump_failures); }, at("invalidation_failures"));
    r.add_gauge_fn(
        "sidecache_l2_invalidations_pending", "Invalidations not yet made in Redis (users, +1 for all).", {},
        [&l2] { return static_cast<double>(l2.pending()); }, at("invalidations_pending"));
    r.add_flag(
        "sidecache_l2_degraded", "1 while a Redis client's breaker is open (served as without L2).", {},
        [&l2] { return l2.degraded(); }, at("degraded"));
}

void declare_external_metrics(metrics::registry& r, const external::client& client) {
    auto read = [&client](auto field) {
        return [&client, field] { return static_cast<double>(client.stats().*field); };
    };
    using s = external::client_stats;
    auto at = [](const char* key) { return json_path{"external", key}; };
    r.add_counter_fn("sidecache_external_tries_total", "HTTP requests made to the external agent API.", {},
                     read(&s::tries), at("tries"));
    r.add_counter_fn("sidecache_external_retries_total", "Of the tries, those that retried a fetch.", {},
                     read(&s::retries), at("retries"));
    r.add_counter_fn("sidecache_external_fetches_total", "Agent fetches led (each one try or more).", {},
                     read(&s::fetches), at("fetches"));
    r.add_counter_fn("sidecache_external_coalesced_total", "Agent lookups that joined a fetch in progress.", {},
                     read(&s::coalesced), at("coalesced"));
    r.add_counter_fn("sidecache_external_cache_hits_total", "Agent lookups answered by the per-agent cache.",
                     {}, read(&s::cache_hits), at("cache_hits"));
    r.add_counter_fn("sidecache_external_rejected_total", "Agent fetches refused by the open breaker.", {},
                     read(&s::rejected), at("rejected"));
    r.add_counter_fn("sidecache_external_degraded_agents_total", "Agents answered \"stale\" or \"unavailable\".",
                     {}, read(&s::degraded_agents), at("degraded_agents"));
    for (auto state : {external::circuit_breaker::state::closed, external::circuit_breaker::state::open,
                       external::circuit_breaker::state::half_open}) {
        r.add_gauge_fn("sidecache_external_breaker_state", "The breaker's state now: 1 for the current one.",
                       {{"state", std::string(external::to_string(state))}},
                       [&client, state] { return client.stats().breaker == state ? 1.0 : 0.0; });
    }
    r.add_json(at("breaker"),
               [&client] { return boost::json::value(std::string(external::to_string(client.stats().breaker))); });
    r.add_counter_fn("sidecache_external_breaker_opened_total", "Times the breaker opened.", {},
                     read(&s::breaker_opened), at("breaker_opened"));
    r.add_gauge_fn("sidecache_external_open_connections", "Connections to the external agent API now.", {},
                   read(&s::open_connections), at("open_connections"));
}

void declare_database_metrics(metrics::registry& r, const db::pool& database) {
    auto at = [](const char* key) { return json_path{"database", key}; };
    auto pool = [&database](auto field) {
        return [&database, field] { return static_cast<double>(database.stats().*field); };
    };
    using p = db::pool_stats;
    r.add_flag("sidecache_postgres_up", "At least one PostgreSQL connection is up, its statements prepared.", {},
               [&database] { return database.ready(); }, at("ready"));
    r.add_json(at("reason"), [&database] { return boost::json::value(database.reason()); });
    r.add_gauge_fn("sidecache_postgres_connections", "Query pool connections now, by state.",
                   {{"state", "connected"}}, pool(&p::connections), at("connections"));
    r.add_gauge_fn("sidecache_postgres_connections", "Query pool connections now, by state.",
                   {{"state", "in_use"}}, pool(&p::in_use), at("in_use"));
    r.add_counter_fn("sidecache_postgres_waits_total", "Queries that waited for a pool connection.", {},
                     pool(&p::waits), at("waits"));
    r.add_counter_fn("sidecache_postgres_reconnect_waits_total",
                     "Queries that waited for the pool to reconnect: it had no connection (database.reconnect_wait).",
                     {}, pool(&p::reconnect_waits), at("reconnect_waits"));
    r.add_counter_fn("sidecache_postgres_retries_total",
                     "Statements run again on another connection after theirs was lost under them.", {},
                     pool(&p::retries), at("retries"));
    r.add_counter_fn("sidecache_postgres_errors_total",
                     "Queries that failed: not ready, timeout, connection or SQL error.", {}, pool(&p::errors),
                     at("errors"));
    r.add_counter_fn("sidecache_postgres_queue_timeouts_total",
                     "Of the errors, queries that got no pool connection before their deadline.", {},
                     pool(&p::queue_timeouts), at("queue_timeouts"));
    r.add_counter_fn("sidecache_postgres_statement_timeouts_total",
                     "Of the errors, statements cancelled at database.query_timeout or their deadline.", {},
                     pool(&p::statement_timeouts), at("statement_timeouts"));
    r.add_json(at("refreshes"), [&database] { return boost::json::value(database.refreshes()); });

    // The view refresher (docs/freshness.md).
    auto refresher = [&database](auto field) {
        return [&database, field] { return static_cast<double>(database.refresher().*field); };
    };
    using f = db::refresher_stats;
    auto ref = [](const char* key) { return json_path{"database", "refresher", key}; };
    r.add_flag("sidecache_refresher_leader", "This sidecar holds the view refresher's lock.", {},
               [&database] { return database.refresher().leader; }, ref("leader"));
    r.add_counter_fn("sidecache_refreshes_total", "View refreshes this sidecar completed.", {},
                     refresher(&f::refreshes), ref("refreshes"));
    r.add_counter_fn("sidecache_refresh_skipped_total", "The leader's checks that found nothing to refresh.", {},
                     refresher(&f::skipped), ref("skipped"));
    r.add_counter_fn("sidecache_refresh_failures_total", "Refresher checks or refreshes that failed.", {},
                     refresher(&f::failures), ref("failures"));
    r.add_json(ref("last_reason"), [&database] { return boost::json::value(database.refresher().last_reason); });
    r.add_gauge_fn("sidecache_refresh_last_duration_seconds", "How long the last completed refresh took.", {},
                   [&database] { return static_cast<double>(database.refresher().last_duration_ms) / 1000; });
    r.add_json(ref("last_duration_ms"),
               [&database] { return boost::json::value(database.refresher().last_duration_ms); });
    r.add_counter_fn("sidecache_refresh_duration_seconds_total",
                     "Time the completed refreshes took, added up (divided by sidecache_refreshes_total: the mean).",
                     {}, [&database] { return static_cast<double>(database.stats().refresh_ms_total) / 1000; });
    r.add_json(ref("last_error"), [&database] { return boost::json::value(database.refresher().last_error); });
}

void declare_listener_metrics(metrics::registry& r, const db::pool& database, const conf::database_config& cfg) {
    auto read = [&database](auto field) {
        return [&database, field] { return static_cast<double>((*database.notify_stats()).*field); };
    };
    using s = db::listener_stats;
    auto at = [](const char* key) { return json_path{"invalidation", key}; };
    auto beat = [](const char* key) { return json_path{"invalidation", "heartbeat", key}; };
    r.add_flag("sidecache_listener_up", "LISTENing on database.notify_channel now.", {},
               [&database] { return database.notify_stats()->up; }, at("listening"));
    r.add_json(at("channel"), [channel = cfg.notify_channel] { return boost::json::value(channel); });
    r.add_counter_fn("sidecache_listener_notifications_total", "Notifications received on the channel.", {},
                     read(&s::notifications), at("notifications"));
    const std::pair<const char*, std::uint64_t s::*> causes[] = {{"notify_user", &s::user_changes},
                                                                 {"notify_agent", &s::agent_changes},
                                                                 {"notify_all", &s::all_changes},
                                                                 {"notify_garbled", &s::garbled}};
    const char* json_keys[] = {"user_changes", "agent_changes", "all_changes", "garbled"};
    for (std::size_t k = 0; k < std::size(causes); ++k) {
        r.add_counter_fn("sidecache_invalidations_total", help::invalidations, {{"cause", causes[k].first}},
                         read(causes[k].second), at(json_keys[k]));
    }
    r.add_counter_fn("sidecache_listener_invalidated_entries_total", "Cache entries the notifications hit.", {},
                     read(&s::entries_invalidated), at("entries_invalidated"));
    r.add_counter_fn("sidecache_listener_connects_total", "Successful LISTENs (the first one included).", {},
                     read(&s::connects), at("connects"));
    r.add_counter_fn("sidecache_listener_reconnects_total", "LISTENs again after a lost connection.", {},
                     read(&s::reconnects), at("reconnects"));
    r.add_counter_fn("sidecache_listener_connect_failures_total", "Listener connections that failed.", {},
                     read(&s::connect_failures), at("connect_failures"));
    r.add_json(at("backend_pid"), [&database] { return boost::json::value(database.notify_stats()->backend_pid); });
    r.add_gauge_fn("sidecache_listener_heartbeat_interval_seconds", "database.heartbeat_interval.", {},
                   [interval = cfg.heartbeat_interval] { return std::chrono::duration<double>(interval).count(); });
    r.add_json(beat("interval_ms"), [ms = cfg.heartbeat_interval.count()] { return boost::json::value(ms); });
    r.add_counter_fn("sidecache_listener_heartbeats_total", "Heartbeats, by what became of them.",
                     {{"kind", "sent"}}, read(&s::heartbeats_sent), beat("sent"));
    r.add_counter_fn("sidecache_listener_heartbeats_total", "Heartbeats, by what became of them.",
                     {{"kind", "received"}}, read(&s::heartbeats_received), beat("received"));
    r.add_counter_fn("sidecache_listener_heartbeats_total", "Heartbeats, by what became of them.",
                     {{"kind", "foreign"}}, read(&s::foreign_heartbeats), beat("foreign"));
    r.add_counter_fn("sidecache_listener_heartbeats_overdue_total",
                     "Times the channel went overdue (its heartbeat late or lost): entries stale until proven.",
                     {}, read(&s::heartbeats_overdue), beat("overdue_count"));
    r.add_gauge_fn("sidecache_listener_heartbeat_age_seconds",
                   "Since the channel was last proven by our own heartbeat; -1: never.", {},
                   [&database] {
                       const auto ms = database.notify_stats()->heartbeat_age_ms;
                       return ms < 0 ? -1.0 : static_cast<double>(ms) / 1000;
                   });
    r.add_json(beat("last_age_ms"), [&database] { return boost::json::value(database.notify_stats()->heartbeat_age_ms); });
    r.add_flag("sidecache_listener_heartbeat_overdue", "The heartbeat is overdue: no entry is served as fresh.",
               {}, [&database] { return database.notify_stats()->heartbeat_overdue; }, beat("overdue"));
    r.add_json(at("reason"), [&database] { return boost::json::value(database.notify_reason()); });
}

}  // namespace sidecache::proxy
