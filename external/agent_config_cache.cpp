#include "external/agent_config_cache.hpp"

#include <algorithm>

namespace sidecache::external {

agent_config_cache::agent_config_cache(conf::duration ttl, conf::duration max_stale, std::size_t max_entries)
    : ttl_(ttl), max_stale_(std::max(ttl, max_stale)), max_entries_(std::max<std::size_t>(1, max_entries)) {}

std::optional<agent_config_cache::fresh_entry> agent_config_cache::fresh(std::string_view agent_id,
                                                                         time_point now) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(std::string(agent_id));
    if (it == entries_.end()) return std::nullopt;
    const entry& e = it->second;
    if (e.invalidated || now - e.fetched_at >= ttl_) return std::nullopt;
    if (!e.found) return fresh_entry{false, {}};
    return fresh_entry{true, *e.config};
}

std::optional<boost::json::object> agent_config_cache::last_good(std::string_view agent_id,
                                                                 time_point now) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(std::string(agent_id));
    if (it == entries_.end() || !it->second.config) return std::nullopt;
    if (now - it->second.config_fetched_at >= max_stale_) return std::nullopt;
    return *it->second.config;
}

void agent_config_cache::store_found(std::string_view agent_id, boost::json::object config, time_point now) {
    std::lock_guard lock(mutex_);
    make_room(agent_id, now);
    auto& e = entries_[std::string(agent_id)];
    e.fetched_at = now;
    e.found = true;
    e.invalidated = false;
    e.config = std::move(config);
    e.config_fetched_at = now;
    prune(now);
}

void agent_config_cache::store_missing(std::string_view agent_id, time_point now) {
    std::lock_guard lock(mutex_);
    make_room(agent_id, now);
    auto& e = entries_[std::string(agent_id)];
    // The agent is gone: its old configuration must not come back as "stale".
    e = entry{now, false, false, std::nullopt, {}};
    prune(now);
}

bool agent_config_cache::invalidate(std::string_view agent_id) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(std::string(agent_id));
    if (it == entries_.end()) return false;
    it->second.invalidated = true;
    return true;
}

std::size_t agent_config_cache::invalidate_all() {
    std::lock_guard lock(mutex_);
    for (auto& [id, e] : entries_) e.invalidated = true;
    return entries_.size();
}

void agent_config_cache::clear() {
    std::lock_guard lock(mutex_);
    entries_.clear();
}

std::size_t agent_config_cache::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

void agent_config_cache::make_room(std::string_view agent_id, time_point now) {
    if (entries_.size() < max_entries_ || entries_.count(std::string(agent_id)) != 0) return;
    drop_useless(now);
    if (entries_.size() >= max_entries_) entries_.erase(entries_.begin());
}

void agent_config_cache::prune(time_point now) {
    // Every 1024 stores, drop what is neither fresh nor servable as stale,
    // so ids seen once do not accumulate forever.
    if (++stores_since_prune_ < 1024) return;
    stores_since_prune_ = 0;
    drop_useless(now);
}

void agent_config_cache::drop_useless(time_point now) {
    std::erase_if(entries_, [&](const auto& kv) {
        const entry& e = kv.second;
        const bool fresh = !e.invalidated && now - e.fetched_at < ttl_;
        const bool stale_ok = e.config && now - e.config_fetched_at < max_stale_;
        return !fresh && !stale_ok;
    });
}

}  // namespace sidecache::external
