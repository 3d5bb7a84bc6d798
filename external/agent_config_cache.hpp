#pragma once
// Per-agent external configuration, keyed by the ElevenLabs agent id:
// fresh for config_ttl after a fetch, then kept as the "last good"
// configuration up to max_stale after it, for answers with configStatus
// "stale" when a fetch fails. A 404 is remembered for config_ttl too
// (configStatus "missing"), never served stale. Thread-safe; time is injected.

#include "conf/config.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sidecache::external {

class agent_config_cache {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;

    // What a fresh entry says.
    struct fresh_entry {
        bool found = false;          // false: the agent is missing (404)
        boost::json::object config;  // the mapped `elevenLabs` object when found
    };

    // At most `max_entries` agents are remembered: a new one past it first
    // drops every useless entry, then, if none was, an arbitrary one.
    agent_config_cache(conf::duration ttl, conf::duration max_stale, std::size_t max_entries = 100'000);

    // The entry if fetched less than ttl ago and not invalidated since.
    std::optional<fresh_entry> fresh(std::string_view agent_id, time_point now) const;
    // The last good (found) configuration if fetched less than max_stale ago,
    // invalidated or not.
    std::optional<boost::json::object> last_good(std::string_view agent_id, time_point now) const;

    void store_found(std::string_view agent_id, boost::json::object config, time_point now);
    void store_missing(std::string_view agent_id, time_point now);

    // The next lookup fetches again; the last good configuration stays
    // available as "stale". Returns whether the id was known.
    bool invalidate(std::string_view agent_id);
    // invalidate() for every agent (a bulk write or a listener gap: which
    // agents changed is not known). Returns how many were known.
    std::size_t invalidate_all();
    void clear();
    std::size_t size() const;

private:
    struct entry {
        time_point fetched_at{};  // of `config` (found) or of the 404
        bool found = false;       // the latest fetch answered 200
        bool invalidated = false;
        std::optional<boost::json::object> config;  // the last 200 (cleared by a 404)
        time_point config_fetched_at{};
    };
    void prune(time_point now);
    void make_room(std::string_view agent_id, time_point now);  // before an insert
    void drop_useless(time_point now);

    conf::duration ttl_;
    conf::duration max_stale_;
    std::size_t max_entries_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, entry> entries_;
    std::size_t stores_since_prune_ = 0;
};

}  // namespace sidecache::external
