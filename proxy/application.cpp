#include "proxy/application.hpp"

#include "auth/verifier.hpp"
#include "cache/midnight_refill.hpp"
#include "cache/service.hpp"
#include "conf/effective.hpp"
#include "conf/loader.hpp"
#include "conf/reload.hpp"
#include "db/pool.hpp"
#include "external/client.hpp"
#include "l2/client.hpp"
#include "l2/fleet_lease.hpp"
#include "l2/second_level.hpp"
#include "log/logger.hpp"
#include "metrics/registry.hpp"
#include "proxy/admin.hpp"
#include "proxy/cached_routes.hpp"
#include "proxy/fills.hpp"
#include "proxy/module_metrics.hpp"
#include "proxy/server.hpp"
#include "proxy/warmup.hpp"
#include "sync/time_source.hpp"
#include "upstream/pool.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json/array.hpp>
#include <fmt/core.h>

#include <mutex>
#include <optional>

namespace sidecache::proxy {

// Members are destroyed in reverse order: the server (its io_context, and
// with it every coroutine frame, fills included) goes before the cache and
// the fills those frames refer to; the external client, whose sockets live
// on the server's io_contexts, goes before the server.
struct application::impl {
    conf::config cfg;
    const sync::time_source& clock;
    std::unique_ptr<db::pool> database;
    std::unique_ptr<auth::verifier> identity;
    std::unique_ptr<cache::service> cache;
    std::unique_ptr<upstream_fill> fallback;
    std::unique_ptr<fill_stats> fills;
    std::vector<std::unique_ptr<route_fill>> route_fills;
    std::unique_ptr<cache::midnight_refill> midnight;
    std::unique_ptr<proxy::warmup> warm;  // cache.warmup on, with PostgreSQL
    std::unique_ptr<proxy::server> server;
    std::unique_ptr<external::client> external;
    // l2 on: one Redis client per io thread, and the cache's use of them.
    // Their sockets and timers live on the server's io_contexts: gone
    // before the server (~application).
    std::vector<std::unique_ptr<l2::client>> redis;
    std::vector<std::unique_ptr<l2::client_commands>> redis_commands;
    std::unique_ptr<l2::second_level_cache> l2;
    std::unique_ptr<l2::fleet_lease> lease;  // with a NOTIFY heartbeat: a start keeps the fleet's L2
    std::mutex reload_mutex;                 // one reload at a time (SIGHUP, POST /reload)
    metrics::counter reloads_ok, reloads_error;

    impl(conf::config c, const sync::time_source& t) : cfg(std::move(c)), clock(t) {
        server = std::make_unique<proxy::server>(cfg);
        if (!cfg.database.url.empty()) database = std::make_unique<db::pool>(cfg.database);

        const bool caching = cfg.cache.enabled && !cfg.cache.routes.empty();
        if (caching && cfg.auth.jwt_secret.empty()) {
            log::warn("proxy",
                      "auth.jwt_secret is empty: no token can be verified, so nothing is cached and every "
                      "request goes to the legacy backend");
        }
        if (!caching || cfg.auth.jwt_secret.empty()) return;

        bool enrich = false;
        for (const auto& r : cfg.cache.routes) enrich = enrich || r.enrich_agents;
        if (enrich && !cfg.external.url.host.empty()) {
            external = std::make_unique<external::client>(cfg.external);
        }

        identity = std::make_unique<auth::verifier>(cfg.auth, clock);
        cache = std::make_unique<cache::service>(cfg.cache, clock);
        fallback = std::make_unique<upstream_fill>(server->upstream_pool());
        fills = std::make_unique<fill_stats>(server->metrics());
        std::vector<cache::filler*> fillers;
        for (const auto& route : cfg.cache.routes) {
            route_fills.push_back(
                std::make_unique<route_fill>(route, database.get(), external.get(), *fallback, *fills));
            fillers.push_back(route_fills.back().get());
        }
        // Right after each UTC midnight, the day-bound entries read recently
        // are refilled ahead of their readers (on the first io thread).
        midnight = std::make_unique<cache::midnight_refill>(*cache, cfg.cache, clock, fillers);
        midnight->start(server->context().get_executor());
        // At start and after each flush, the recently active users' answers
        // are filled in the background by the same passes, on the same thread.
        if (cfg.cache.warmup.enabled && database)
            warm = std::make_unique<proxy::warmup>(cfg.cache.warmup, *database, *midnight,
                                                   server->context().get_executor());
        // The external API is back: degraded answers go (and fills of them in
        // flight are not stored), so the next request gets a complete one.
        if (external) {
            external->on_recovery([this] {
                const auto dropped = cache->invalidate_entries(degraded_tag, cache::invalidation::hard);
                log::info("external", "the agent API answers again: degraded answers dropped",
                          {{"entries", dropped}});
            });
            external->start_recovery_probe(server->context().get_executor());
        }
        if (cfg.l2.enabled) start_second_level();
        server->set_interceptor(
            std::make_shared<cached_routes>(*cache, *identity, std::move(fillers), server->metrics()));
        // An overdue heartbeat: no entry is fresh until the channel is back.
        if (database)
            database->on_change([this](const db::change& c) { return invalidate(c); },
                                [this](bool proven) { cache->suspend_freshness(!proven); }, lease_hooks());
    }

    // The listener's hooks for the fleet lease (docs/l2.md "A starting
    // replica"): none without L2 or without heartbeats.
    db::listener_hooks lease_hooks() {
        if (!l2 || !database || !cfg.database.listen_notify || cfg.database.heartbeat_interval.count() <= 0)
            return {};
        lease =
            std::make_unique<l2::fleet_lease>(cfg.l2, cfg.database.heartbeat_interval,
                                              server->context().get_executor(), *redis_commands.front(), *l2);
        return {[this](bool first) { return lease->before_listen(first); },
                [this](std::string_view token, std::uint64_t seq, bool ours) {
                    lease->heartbeat(token, seq, ours);
                }};
    }

    // The second level (docs/l2.md): a Redis client per io thread; pending
    // invalidations are retried on the first one.
    void start_second_level() {
        const auto o = l2::options_from(cfg.l2);
        std::vector<l2::second_level_cache::binding> bindings;
        for (auto* ioc : server->contexts()) {
            redis.push_back(std::make_unique<l2::client>(*ioc, o));
            redis_commands.push_back(std::make_unique<l2::client_commands>(*redis.back()));
            bindings.push_back({ioc, redis_commands.back().get()});
        }
        l2 = std::make_unique<l2::second_level_cache>(
            cfg.l2, std::move(bindings), server->context().get_executor(), *redis_commands.front());
        cache->use_second_level(l2.get());
        log::info("l2", "second level on Redis",
                  {{"url", conf::redact_url(cfg.l2.url.text)}, {"clients", redis.size()}});
    }

    // At shutdown, after the io threads stopped: no more Redis calls.
    void stop_second_level() {
        if (!l2) return;
        if (lease) lease->stop();
        lease.reset();
        cache->use_second_level(nullptr);
        l2->stop();
        l2.reset();
        for (auto& c : redis) c->close();
        redis_commands.clear();
        redis.clear();
    }

    // A change PostgreSQL notified (db/listener.hpp), on the db thread; the
    // store is thread-safe. Always hard: a fill costs milliseconds, and a
    // stale answer served once while refreshing would be a wrong figure, or
    // a dashboard for a user who is no longer allowed one (docs/freshness.md).
    // Fills in flight that began before are neither stored nor joined by
    // later requests (cache::service::invalidate). An agent's change also
    // drops its cached external configuration: the next fill fetches it.
    std::size_t invalidate(const db::change& c) {
        if (c.what == db::change::kind::user)
            return cache->invalidate("user:" + c.id, cache::invalidation::hard);
        if (c.what == db::change::kind::agent) {
            // The owner's "user:<id>" comes in the same notification and
            // covers the owner's fills in flight; the agent's tag alone
            // would cover every user's.
            if (external) external->invalidate(c.id);
            return cache->invalidate_entries("agent:" + c.id, cache::invalidation::hard);
        }
        // Any agent may have changed: their configurations are fetched
        // again (the last good one stays servable as "stale").
        if (external) external->invalidate_all();
        // The first LISTEN's flush beside a fleet that listened: its L2 bump
        // is held until the lease proves the fleet saw what came before it.
        const bool held = c.why == db::change::cause::connected && lease && lease->hold_start_flush();
        std::size_t hit = 0;
        for (const auto& route : cfg.cache.routes)
            hit += held ? cache->invalidate_first_level("route:" + route.name, cache::invalidation::hard)
                        : cache->invalidate("route:" + route.name, cache::invalidation::hard);
        if (warm) warm->trigger();  // a flush: warm up again
        return hit;
    }

    // POST /purge (proxy/purge.hpp), on the admin io thread. The tags and
    // the reach are a NOTIFY's (invalidate() above): fills in flight that
    // began before are neither stored nor joined. An agent's purge has no
    // owner's "user:<id>" with it, so it uses invalidate(), which covers
    // every fill in flight, and drops the agent's external configuration.
    std::size_t purge(const purge_request& p) {
        switch (p.what) {
        case purge_selector::user:
            return cache->invalidate("user:" + p.value, p.mode);
        case purge_selector::route:
            return cache->invalidate("route:" + p.value, p.mode);
        case purge_selector::agent:
            if (external) external->invalidate(p.value);
            return cache->invalidate("agent:" + p.value, p.mode);
        case purge_selector::tag:
            return cache->invalidate(p.value, p.mode);
        case purge_selector::all:
            break;
        }
        if (external) external->invalidate_all();
        std::size_t hit = 0;
        for (const auto& route : cfg.cache.routes) hit += cache->invalidate("route:" + route.name, p.mode);
        if (warm) warm->trigger();  // a flush: warm up again
        return hit;
    }

    // The configuration file read again; what changes live is published in
    // the server's conf::live_config (read there per request) and handed to
    // the modules that keep their own pointer to it.
    reload_outcome reload() {
        std::lock_guard lock(reload_mutex);
        auto& live = server->settings();
        const conf::config& running = live.current();
        conf::config loaded;
        try {
            loaded = conf::load_file(running.source_file);
        } catch (const std::exception& e) {
            reloads_error.inc();
            log::error("config", "reload rejected: the configuration in effect stays", {{"error", e.what()}});
            return reload_outcome{false, e.what(), {}, {}};
        }
        auto plan = conf::plan_reload(running, loaded);
        // Nothing to apply: no new version (each is kept for the process's life).
        if (!plan.applied.empty()) apply(live.publish(std::move(plan.effective)));
        reloads_ok.inc();
        boost::json::array applied, restart;
        for (const auto& k : plan.applied) applied.emplace_back(k);
        for (const auto& k : plan.needs_restart) {
            restart.emplace_back(k);
            log::warn("config", "changed in the file, needs a restart: left as it is", {{"key", k}});
        }
        log::info("config", "reloaded",
                  {{"file", running.source_file}, {"applied", std::move(applied)}, {"needs_restart", std::move(restart)}});
        return reload_outcome{true, {}, std::move(plan.applied), std::move(plan.needs_restart)};
    }

    // `c` (kept by the live_config for the process's life) to the modules
    // that hold their own pointer to their settings.
    void apply(const conf::config& c) {
        log::global().set_level(log::parse_level(c.log.level).value_or(log::level::info));
        server->set_access_log(c.log.access_log);
        server->upstream_pool().reconfigure(c.upstream);
        if (cache) cache->reconfigure(c.cache);
        // The same routes in the same order (conf::plan_reload keeps the running list otherwise).
        for (std::size_t i = 0; i < route_fills.size() && i < c.cache.routes.size(); ++i)
            route_fills[i]->reconfigure(c.cache.routes[i]);
        if (external) external->reconfigure(c.external);
    }

    // /ready's checks, and each module's series in the metrics registry
    // (/stats and /metrics).
    void register_admin() {
        auto& admin = server->admin();
        auto& metrics = server->metrics();
        declare_build_info(metrics);
        const std::string reloads_help = "Reloads of the configuration file (SIGHUP, POST /reload) by result.";
        reloads_ok = metrics.add_counter("sidecache_config_reloads_total", reloads_help, {{"result", "ok"}},
                                         {"reload", "ok"});
        reloads_error = metrics.add_counter("sidecache_config_reloads_total", reloads_help, {{"result", "error"}},
                                            {"reload", "error"});
        metrics.add_json({"reload", "versions"}, [this] { return boost::json::value(server->settings().versions()); });
        admin.set_reload([this] { return reload(); });
        if (cache) {
            declare_cache_metrics(metrics, *cache, cfg.cache);
            admin.set_purge([this](const purge_request& p) { return purge(p); });
            declare_midnight_metrics(metrics, *midnight);
            if (warm) {
                declare_warmup_metrics(metrics, *warm);
                // Not ready while the start's warm-up runs, up to cache.warmup.ready_timeout.
                admin.add_readiness("warmup", [this] { return warm->readiness(); });
            }
        }
        if (external) declare_external_metrics(metrics, *external);
        if (l2) {
            declare_l2_metrics(metrics, *l2);
            // Redis down is not unready: requests are served as without L2.
            admin.add_degradation("l2", [this] {
                return l2 && l2->degraded()
                           ? std::string("Redis unavailable, its breaker open (served without L2)")
                           : std::string();
            });
        }
        if (database) {
            // PostgreSQL down is not unready: the routes fall back to the legacy.
            admin.add_degradation("database", [this] {
                return database->ready() ? std::string()
                                         : database->reason() + " (fills forwarded to the legacy)";
            });
            declare_database_metrics(metrics, *database);
        }
        if (database && database->notify_stats()) {
            // Listener down: still serving, but changes are seen only at expiry.
            admin.add_degradation("invalidation", [this] { return database->notify_reason(); });
            // A silent channel while PostgreSQL answers: this replica alone
            // cannot see writes, so it leaves the rotation. With PostgreSQL
            // down for every replica it stays ready (the routes fall back to
            // the legacy), the entries served stale meanwhile.
            admin.add_readiness("invalidation", [this] {
                auto why = database->heartbeat_reason();
                return database->ready() ? why : std::string();
            });
            declare_listener_metrics(metrics, *database, cfg.database);
        }
    }
};

application::application(conf::config cfg) : application(std::move(cfg), sync::real_time()) {}

application::application(conf::config cfg, const sync::time_source& clock)
    : impl_(std::make_unique<impl>(std::move(cfg), clock)) {
    impl_->register_admin();
}

application::~application() {
    if (!impl_) return;
    impl_->server->stop();
    // Its waits hold timers of the server's io_context, destroyed before it.
    if (impl_->midnight) impl_->midnight->stop();
    // PostgreSQL answers are posted to the server's io_context: no more of
    // them once it is destroyed. The external client's connections live on
    // that io_context too.
    if (impl_->database) impl_->database->stop();
    // After the db thread (its invalidations reach the second level).
    impl_->stop_second_level();
    impl_->external.reset();
}

void application::start() {
    if (impl_->database) impl_->database->start();
    impl_->server->start();
    // With a listener, its first LISTEN is a flush (invalidate() above) and
    // starts the warm-up: a pass begun before it would be flushed and done
    // twice at start.
    if (impl_->warm && !impl_->cfg.database.listen_notify) impl_->warm->trigger();
}

bool application::drain(std::chrono::milliseconds timeout) {
    return impl_->server->drain(timeout);
}

reload_outcome application::reload() {
    return impl_->reload();
}

server& application::server() {
    return *impl_->server;
}
cache::service* application::cache() {
    return impl_->cache.get();
}
db::pool* application::database() {
    return impl_->database.get();
}
external::client* application::external() {
    return impl_->external.get();
}

}  // namespace sidecache::proxy
