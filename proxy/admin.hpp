#pragma once
// What the admin listener reports: GET /live, GET /ready, GET /stats.
// Other modules register their readiness checks and stats sections here.

#include <boost/json/object.hpp>

#include <functional>
#include <mutex>
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

private:
    mutable std::mutex mutex_;
    std::vector<std::pair<std::string, stats_provider>> stats_;
    std::vector<std::pair<std::string, readiness_check>> readiness_;
    std::vector<std::pair<std::string, readiness_check>> degradations_;
};

}  // namespace sidecache::proxy
