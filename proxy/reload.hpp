#pragma once
// What one reload of the configuration file came to (SIGHUP, POST /reload):
// proxy::application carries it out, the admin API and the log report it.

#include <boost/json/object.hpp>

#include <string>
#include <vector>

namespace sidecache::proxy {

struct reload_outcome {
    bool ok = false;
    std::string error;                       // not ok: "FILE:LINE:COL: key: what is wrong"
    std::vector<std::string> applied;        // key paths changed live: "cache.routes[0].ttl"
    std::vector<std::string> needs_restart;  // key paths that differ, left as they are
};

// {"reloaded": true, "applied": [...], "needs_restart": [...]} or
// {"reloaded": false, "error": "..."}.
boost::json::object to_json(const reload_outcome& r);

}  // namespace sidecache::proxy
