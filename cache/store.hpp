#pragma once
// The entries: a byte-bounded LRU, sharded by user so that threads serving
// different users do not contend, with a tag index (tag -> entries) and
// invalidation epochs. Thread-safe; every call holds one shard lock briefly.
// Synchronous and I/O-free: time comes from the injected time_source.

#include "cache/policy.hpp"
#include "cache/response.hpp"
#include "cache/stats.hpp"
#include "conf/config.hpp"
#include "sync/time_source.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sidecache::cache {

enum class invalidation {
    soft,  // the entries turn stale: served within stale_while_revalidate while refreshed
    hard,  // the entries are evicted
};

struct lookup {
    response_bytes response;
    freshness state = freshness::fresh;  // never dead
    std::chrono::system_clock::time_point computed_at;
};

// An entry read recently (store::recently_read), to refill ahead of its readers.
struct recent_entry {
    std::string key;
    std::size_t route = 0;
    std::uint32_t last_read = 0;  // steady time, whole seconds
};

enum class put_result {
    stored,
    too_large,    // one entry larger than a shard's share of max_bytes
    invalidated,  // a tag was invalidated after the fill began: not stored
};

class store {
public:
    // `routes` and `stats` must outlive the store; stats has one row per route.
    store(const conf::cache_config& config, const sync::time_source& clock, stats_table& stats);
    ~store();
    store(const store&) = delete;
    store& operator=(const store&) = delete;

    // `key` = make_key(route name, user_id, normalized query). A dead entry
    // is dropped and not returned; a returned one becomes most recently used.
    std::optional<lookup> get(std::size_t route, std::string_view user_id, std::string_view key);

    // The routes' windows (stale_while_revalidate, stale_if_error,
    // utc_day_bound) read by get() from now on; `next` has the same routes
    // and outlives the store (cache::service::reconfigure). An entry keeps
    // the fresh_until it was stored with.
    void reconfigure(const conf::cache_config& next) { config_.store(&next, std::memory_order_release); }

    // A fill registers when it starts; its epoch is passed to put, which
    // refuses the answer if one of its tags was invalidated since.
    std::uint64_t begin_fill();
    void end_fill(std::uint64_t epoch);

    // Stores `response` (whose key() is the key) tagged user:<id>,
    // route:<name> and `extra_tags`, replacing any entry of that key, then
    // evicts least recently used entries of the shard to fit.
    put_result put(std::size_t route, std::string_view user_id, const response_bytes& response,
                   const std::vector<std::string>& extra_tags,
                   std::chrono::steady_clock::time_point fresh_until,
                   std::chrono::system_clock::time_point computed_at, std::uint64_t fill_epoch);

    // The entries of the routes with `routes[route]` true, read (get or put)
    // at or after `since` and computed before `computed_before`: the most
    // recently read first, at most `max`. Walks each shard's LRU list from
    // its front and stops at the first entry read before `since`.
    std::vector<recent_entry> recently_read(const std::vector<bool>& routes, std::chrono::steady_clock::time_point since,
                                            std::chrono::system_clock::time_point computed_before,
                                            std::size_t max);

    // When the entry of `key` was computed, if there is one; it does not
    // count as a read (no LRU move).
    std::optional<std::chrono::system_clock::time_point> computed_at(std::string_view user_id,
                                                                     std::string_view key);

    // Soft: entries carrying `tag` stop being fresh now. Hard: evicted.
    // Returns the number of entries hit. Cost: shards + entries carrying it.
    std::size_t invalidate(std::string_view tag, invalidation mode);

    std::size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
    std::size_t entries() const { return entries_.load(std::memory_order_relaxed); }
    std::size_t shard_count() const { return shard_count_; }
    std::size_t shard_budget() const { return shard_budget_; }

    // What one entry counts against max_bytes: its node, hash bucket, buffer
    // (key + head + body) and buffer control block, its extra tag links.
    static std::size_t entry_cost(std::size_t buffer_size, std::size_t extra_tags);
    // What one tag record (shared by the entries of a shard carrying the
    // tag, e.g. one per user) counts.
    static std::size_t tag_cost();

    struct shard;

private:
    std::atomic<const conf::cache_config*> config_;
    const conf::cache_config& config() const noexcept { return *config_.load(std::memory_order_acquire); }
    const sync::time_source& clock_;
    stats_table& stats_;
    std::size_t shard_count_;
    std::size_t shard_budget_;
    std::vector<std::unique_ptr<shard>> shards_;
    std::atomic<std::uint64_t> epoch_{1};
    std::atomic<std::size_t> bytes_{0};
    std::atomic<std::size_t> entries_{0};

    // Epochs of the fills in progress; the oldest bounds how long an empty
    // invalidated tag record must be kept.
    std::mutex active_mutex_;
    std::multiset<std::uint64_t> active_;
    std::atomic<std::uint64_t> oldest_active_{UINT64_MAX};

    shard& shard_for(std::string_view user_id);
    friend struct store_access;
};

}  // namespace sidecache::cache
