#pragma once
// What the admin listener reports: GET /live, GET /ready, GET /stats.
// Other modules register their readiness checks and stats sections here,
// and the application the handler of POST /purge.

#include "proxy/purge.hpp"
#include "proxy/reload.hpp"

#include <boost/json/object.hpp>

#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sidecache::proxy {

class admin_registry {
public:
    using stats_provider = std::function<boost::json::object()>;
    // Empty string: ready; else why not ("database unreachable").
    using readiness_check = std::function<std::string()>;

    // GET /stats answers {"<name>": provider(), ...}, in registration order.
    void add_stats(std::string name, stats_provider provider);
    // GET /ready answers 503 with the first non-empty reason, else 200.
    void add_readiness(std::string name, readiness_check check);
    // A part that can fail without making sidecache unready (it falls back):
    // GET /ready stays 200 and lists "degraded: name: reason" for each.
    void add_degradation(std::string name, readiness_check check);

    boost::json::object stats() const;
    std::string not_ready_reason() const;           // "name: reason", empty when ready
    std::vector<std::string> degradations() const;  // "name: reason" each

    // Every readiness check (degraded false) and degradation (true) with its
    // reason now, empty when fine; for GET /readyz.
    struct check_result {
        std::string name;
        std::string reason;
        bool degraded = false;
    };
    std::vector<check_result> checks() const;

    // POST /purge: carries out a parsed request, returns the entries hit.
    // Without a handler (no cache) purge() answers nullopt.
    using purge_handler = std::function<std::size_t(const purge_request&)>;
    void set_purge(purge_handler handler);
    std::optional<std::size_t> purge(const purge_request& request) const;

    // POST /reload: re-reads the configuration file (proxy::application).
    // Without a handler reload() answers nullopt.
    using reload_handler = std::function<reload_outcome()>;
    void set_reload(reload_handler handler);
    std::optional<reload_outcome> reload() const;

private:
    mutable std::mutex mutex_;
    std::vector<std::pair<std::string, stats_provider>> stats_;
    std::vector<std::pair<std::string, readiness_check>> readiness_;
    std::vector<std::pair<std::string, readiness_check>> degradations_;
    purge_handler purge_;
    reload_handler reload_;
};

}  // namespace sidecache::proxy
