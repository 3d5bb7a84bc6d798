#include "cache/stats.hpp"

namespace sidecache::cache {

stats_table::stats_table(std::vector<std::string> route_names)
    : names_(std::move(route_names)), counters_(new route_counters[names_.size()]) {}

boost::json::object stats_table::to_json() const {
    boost::json::object out;
    for (std::size_t i = 0; i < names_.size(); ++i) {
        const auto& c = counters_[i];
        boost::json::object o;
        o["hits"] = c.hits.load();
        o["misses"] = c.misses.load();
        o["stale"] = c.stale.load();
        o["coalesced"] = c.coalesced.load();
        o["fills"] = c.fills.load();
        o["failed_fills"] = c.failed_fills.load();
        o["not_stored"] = c.not_stored.load();
        o["backed_off"] = c.backed_off.load();
        o["timeouts"] = c.timeouts.load();
        o["overloaded"] = c.overloaded.load();
        o["evictions"] = c.evictions.load();
        o["invalidated"] = c.invalidated.load();
        o["entries"] = c.entries.load();
        o["bytes"] = c.bytes.load();
        out[names_[i]] = std::move(o);
    }
    return out;
}

}  // namespace sidecache::cache
