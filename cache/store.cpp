#include "cache/store.hpp"

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/unordered_set.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <unordered_set>

namespace sidecache::cache {

namespace bi = boost::intrusive;

namespace {

using list_hook = bi::list_member_hook<bi::link_mode<bi::normal_link>>;
using set_hook = bi::unordered_set_member_hook<bi::link_mode<bi::normal_link>>;

struct tag_record;
struct node;

// An entry's link into the record of one of its extra tags.
struct extra_link {
    list_hook hook;
    node* owner = nullptr;
    tag_record* record = nullptr;
};

// One entry. Everything but the shared response buffer lives here; the
// key is the start of that buffer.
struct node {
    list_hook lru_hook;
    set_hook hash_hook;
    list_hook user_hook;   // in the user:<id> record's list
    list_hook route_hook;  // in the shard's list for route:<name>
    response_bytes response;
    std::chrono::steady_clock::time_point fresh_until;
    std::uint32_t computed_at = 0;  // system time, seconds since the epoch (for Age)
    std::uint32_t last_read = 0;    // steady time, whole seconds: the last get or put (midnight refill)
    std::uint16_t route = 0;
    std::uint16_t extra_count = 0;
    tag_record* user_record = nullptr;
    std::unique_ptr<extra_link[]> extras;

    std::string_view key() const { return response.key(); }
};

using lru_list = bi::list<node, bi::member_hook<node, list_hook, &node::lru_hook>>;
using user_list = bi::list<node, bi::member_hook<node, list_hook, &node::user_hook>>;
using route_list = bi::list<node, bi::member_hook<node, list_hook, &node::route_hook>>;
using extra_list = bi::list<extra_link, bi::member_hook<extra_link, list_hook, &extra_link::hook>>;

struct key_hash {
    std::size_t operator()(std::string_view k) const { return std::hash<std::string_view>{}(k); }
    std::size_t operator()(const node& n) const { return (*this)(n.key()); }
};
struct key_equal {
    bool operator()(const node& a, const node& b) const { return a.key() == b.key(); }
    bool operator()(std::string_view a, const node& b) const { return a == b.key(); }
};

using node_set = bi::unordered_set<node, bi::member_hook<node, set_hook, &node::hash_hook>,
                                   bi::hash<key_hash>, bi::equal<key_equal>, bi::power_2_buckets<true>>;

// The entries of one shard carrying a tag, and when it was last invalidated.
// A tag is known by a 64-bit hash of its name: two tags colliding would
// share a record, which only invalidates more than asked (safe), and keeps a
// record at 48 bytes with no string.
struct tag_record {
    std::uint64_t id;
    mutable user_list users;    // entries whose user tag this is
    mutable extra_list extras;  // entries carrying it as an extra tag
    mutable std::uint64_t invalidated_epoch = 0;

    explicit tag_record(std::uint64_t i) : id(i) {}
    bool empty() const { return users.empty() && extras.empty(); }
};

std::uint64_t tag_id(std::string_view name) {
    return std::hash<std::string_view>{}(name);
}

struct record_hash {
    using is_transparent = void;
    std::size_t operator()(std::uint64_t id) const noexcept { return id; }
    std::size_t operator()(const tag_record& r) const noexcept { return r.id; }
};
struct record_equal {
    using is_transparent = void;
    bool operator()(const tag_record& a, const tag_record& b) const { return a.id == b.id; }
    bool operator()(std::uint64_t a, const tag_record& b) const { return a == b.id; }
    bool operator()(const tag_record& a, std::uint64_t b) const { return a.id == b; }
};

struct route_record {
    route_list members;
    std::uint64_t invalidated_epoch = 0;
};

// "user:<id>" without allocating for ids of usual length.
fmt::basic_memory_buffer<char, 128> user_tag(std::string_view user_id) {
    fmt::basic_memory_buffer<char, 128> out;
    out.append(std::string_view{"user:"});
    out.append(user_id);
    return out;
}

constexpr std::size_t min_buckets = 64;

std::uint32_t steady_seconds(std::chrono::steady_clock::time_point t) {
    return static_cast<std::uint32_t>(std::max<std::int64_t>(
        0, std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count()));
}

std::uint32_t system_seconds(std::chrono::system_clock::time_point t) {
    return static_cast<std::uint32_t>(std::max<std::int64_t>(
        0, std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count()));
}

}  // namespace

struct store::shard {
    std::mutex mutex;
    std::unique_ptr<node_set::bucket_type[]> buckets;
    std::size_t bucket_count = min_buckets;
    node_set set;
    lru_list lru;
    std::unordered_set<tag_record, record_hash, record_equal> tags;
    std::unique_ptr<route_record[]> routes;
    std::vector<std::uint64_t> pending;  // empty records kept for in-flight fills
    std::size_t bytes = 0;
    std::size_t route_count;

    explicit shard(std::size_t routes_)
        : buckets(new node_set::bucket_type[min_buckets]),
          set(node_set::bucket_traits(buckets.get(), min_buckets)),
          routes(new route_record[routes_]),
          route_count(routes_) {}

    ~shard() {
        // Unlink everything before the containers die (normal_link hooks).
        for (auto& r : tags) {
            r.users.clear();
            r.extras.clear();
        }
        for (std::size_t i = 0; i < route_count; ++i) routes[i].members.clear();
        set.clear();
        lru.clear_and_dispose([](node* n) { delete n; });
    }
};

struct store_access {
    // Grows the bucket array so that the load factor stays <= 1.
    static void maybe_rehash(store::shard& s) {
        if (s.set.size() < s.bucket_count) return;
        auto count = s.bucket_count * 2;
        std::unique_ptr<node_set::bucket_type[]> fresh(new node_set::bucket_type[count]);
        s.set.rehash(node_set::bucket_traits(fresh.get(), count));
        s.buckets = std::move(fresh);
        s.bucket_count = count;
    }

    static void drop_record_if_unused(store& st, store::shard& s, const tag_record& r) {
        if (!r.empty()) return;
        if (r.invalidated_epoch != 0 &&
            r.invalidated_epoch > st.oldest_active_.load(std::memory_order_acquire)) {
            // A fill that began before this invalidation may still try to
            // store: keep the record (and its epoch) until it ends.
            s.pending.push_back(r.id);
            return;
        }
        auto cost = store::tag_cost();
        s.tags.erase(s.tags.find(r.id));
        s.bytes -= cost;
        st.bytes_.fetch_sub(cost, std::memory_order_relaxed);
    }

    static void prune_pending(store& st, store::shard& s) {
        if (s.pending.empty()) return;
        auto oldest = st.oldest_active_.load(std::memory_order_acquire);
        std::vector<std::uint64_t> keep;
        for (auto id : s.pending) {
            auto it = s.tags.find(id);
            if (it == s.tags.end() || !it->empty()) continue;
            if (it->invalidated_epoch > oldest) {
                keep.push_back(id);
                continue;
            }
            auto cost = store::tag_cost();
            s.tags.erase(it);
            s.bytes -= cost;
            st.bytes_.fetch_sub(cost, std::memory_order_relaxed);
        }
        s.pending = std::move(keep);
    }

    static const tag_record& record(store& st, store::shard& s, std::uint64_t id) {
        auto it = s.tags.find(id);
        if (it != s.tags.end()) return *it;
        auto cost = store::tag_cost();
        s.bytes += cost;
        st.bytes_.fetch_add(cost, std::memory_order_relaxed);
        return *s.tags.emplace(id).first;
    }

    // Unlinks and frees one entry (shard lock held).
    static void remove(store& st, store::shard& s, node* n) {
        auto cost = store::entry_cost(n->response.size(), n->extra_count);
        s.lru.erase(s.lru.iterator_to(*n));
        s.set.erase(s.set.iterator_to(*n));
        s.routes[n->route].members.erase(route_list::s_iterator_to(*n));
        n->user_record->users.erase(user_list::s_iterator_to(*n));
        drop_record_if_unused(st, s, *n->user_record);
        for (std::size_t i = 0; i < n->extra_count; ++i) {
            auto& link = n->extras[i];
            link.record->extras.erase(extra_list::s_iterator_to(link));
            drop_record_if_unused(st, s, *link.record);
        }
        s.bytes -= cost;
        st.bytes_.fetch_sub(cost, std::memory_order_relaxed);
        st.entries_.fetch_sub(1, std::memory_order_relaxed);
        auto& c = st.stats_[n->route];
        c.entries.fetch_sub(1, std::memory_order_relaxed);
        c.bytes.fetch_sub(static_cast<std::int64_t>(cost), std::memory_order_relaxed);
        delete n;
    }

    // Soft-invalidates or removes one entry.
    static void hit(store& st, store::shard& s, node* n, invalidation mode,
                    std::chrono::steady_clock::time_point now) {
        st.stats_[n->route].invalidated.fetch_add(1, std::memory_order_relaxed);
        if (mode == invalidation::hard)
            remove(st, s, n);
        else
            n->fresh_until = std::min(n->fresh_until, now);
    }
};

namespace {
// What glibc's malloc takes for a request of n bytes on 64-bit: the chunk's
// size word, rounded up to 16, at least 32. Counting this rather than the
// request keeps RSS near max_bytes when answers are small and an entry's
// fixed part dominates (bench/README.md, "memory").
constexpr std::size_t malloc_footprint(std::size_t n) {
    return std::max<std::size_t>(32, (n + 8 + 15) & ~std::size_t{15});
}
// make_shared_for_overwrite<char[]>: the count block (vptr, use and weak
// counts) and the array in one allocation.
constexpr std::size_t shared_block = 3 * sizeof(void*);
}  // namespace

std::size_t store::entry_cost(std::size_t buffer_size, std::size_t extra_tags) {
    // The node, up to two hash buckets (power-of-two buckets, load factor 1:
    // between one and two per entry), and the shared response buffer.
    return malloc_footprint(sizeof(node)) + 2 * sizeof(node_set::bucket_type) +
           malloc_footprint(shared_block + buffer_size) +
           (extra_tags ? malloc_footprint(extra_tags * sizeof(extra_link)) : 0);
}

std::size_t store::tag_cost() {
    // The record in its hash node (next pointer, cached hash) and a bucket.
    return malloc_footprint(sizeof(tag_record) + 2 * sizeof(void*)) + sizeof(void*);
}

store::store(const conf::cache_config& config, const sync::time_source& clock, stats_table& stats)
    : config_(&config),
      clock_(clock),
      stats_(stats),
      shard_count_(std::max(1u, config.shards)),
      shard_budget_(config.max_bytes / shard_count_) {
    shards_.reserve(shard_count_);
    for (std::size_t i = 0; i < shard_count_; ++i)
        shards_.push_back(std::make_unique<shard>(config.routes.size()));
}

store::~store() = default;

store::shard& store::shard_for(std::string_view user_id) {
    return *shards_[std::hash<std::string_view>{}(user_id) % shard_count_];
}

std::optional<lookup> store::get(std::size_t route, std::string_view user_id, std::string_view key) {
    auto& s = shard_for(user_id);
    const auto& rc = config().routes[route];
    auto now = clock_.steady_now();
    std::lock_guard lock(s.mutex);
    auto it = s.set.find(key, key_hash{}, key_equal{});
    if (it == s.set.end()) return std::nullopt;
    node* n = &*it;
    auto state = classify(now, n->fresh_until, rc.stale_while_revalidate, rc.stale_if_error);
    // (Not on the fresh path: fresh_until is capped at that midnight already.)
    if (state == freshness::stale && rc.utc_day_bound)
        state = past_day_end(state, std::chrono::system_clock::time_point{std::chrono::seconds{n->computed_at}},
                             clock_.system_now());
    if (state == freshness::dead) {
        store_access::remove(*this, s, n);
        return std::nullopt;
    }
    s.lru.splice(s.lru.begin(), s.lru, s.lru.iterator_to(*n));
    n->last_read = steady_seconds(now);  // under the shard lock taken anyway
    return lookup{n->response, state,
                  std::chrono::system_clock::time_point{std::chrono::seconds{n->computed_at}}};
}

std::uint64_t store::begin_fill() {
    std::lock_guard lock(active_mutex_);
    auto e = epoch_.load();
    active_.insert(e);
    oldest_active_.store(*active_.begin(), std::memory_order_release);
    return e;
}

void store::end_fill(std::uint64_t epoch) {
    std::lock_guard lock(active_mutex_);
    auto it = active_.find(epoch);
    if (it != active_.end()) active_.erase(it);
    oldest_active_.store(active_.empty() ? UINT64_MAX : *active_.begin(), std::memory_order_release);
}

put_result store::put(std::size_t route, std::string_view user_id, const response_bytes& response,
                      const std::vector<std::string>& extra_tags,
                      std::chrono::steady_clock::time_point fresh_until,
                      std::chrono::system_clock::time_point computed_at, std::uint64_t fill_epoch) {
    auto utag = user_tag(user_id);
    std::string_view utag_view{utag.data(), utag.size()};
    auto route_tag = "route:" + config().routes[route].name;

    // Extra tags that are not the implicit ones, without duplicates.
    auto user_id_hash = tag_id(utag_view);
    std::vector<std::uint64_t> extras;
    for (const auto& t : extra_tags) {
        auto id = tag_id(t);
        if (id == user_id_hash || t == route_tag ||
            std::find(extras.begin(), extras.end(), id) != extras.end())
            continue;
        extras.push_back(id);
    }
    auto cost = entry_cost(response.size(), extras.size());
    if (cost + tag_cost() > shard_budget_) return put_result::too_large;

    auto& s = shard_for(user_id);
    std::lock_guard lock(s.mutex);

    // Versions: refuse an answer computed before an invalidation of its tags.
    if (s.routes[route].invalidated_epoch > fill_epoch) return put_result::invalidated;
    for (auto id : extras) {
        auto it = s.tags.find(id);
        if (it != s.tags.end() && it->invalidated_epoch > fill_epoch) return put_result::invalidated;
    }
    if (auto it = s.tags.find(user_id_hash); it != s.tags.end() && it->invalidated_epoch > fill_epoch)
        return put_result::invalidated;

    if (auto it = s.set.find(response.key(), key_hash{}, key_equal{}); it != s.set.end())
        store_access::remove(*this, s, &*it);

    auto* n = new node;
    n->response = response;
    n->fresh_until = fresh_until;
    n->computed_at = system_seconds(computed_at);
    n->last_read = steady_seconds(clock_.steady_now());
    n->route = static_cast<std::uint16_t>(route);
    n->extra_count = static_cast<std::uint16_t>(extras.size());
    if (!extras.empty()) n->extras.reset(new extra_link[extras.size()]);

    store_access::maybe_rehash(s);
    s.set.insert(*n);
    s.lru.push_front(*n);
    s.routes[route].members.push_back(*n);
    n->user_record = const_cast<tag_record*>(&store_access::record(*this, s, user_id_hash));
    n->user_record->users.push_back(*n);
    for (std::size_t i = 0; i < extras.size(); ++i) {
        auto& link = n->extras[i];
        link.owner = n;
        link.record = const_cast<tag_record*>(&store_access::record(*this, s, extras[i]));
        link.record->extras.push_back(link);
    }
    s.bytes += cost;
    bytes_.fetch_add(cost, std::memory_order_relaxed);
    entries_.fetch_add(1, std::memory_order_relaxed);
    auto& c = stats_[route];
    c.entries.fetch_add(1, std::memory_order_relaxed);
    c.bytes.fetch_add(static_cast<std::int64_t>(cost), std::memory_order_relaxed);

    // Least recently used first, never the entry just stored.
    while (s.bytes > shard_budget_ && &s.lru.back() != n) {
        node* victim = &s.lru.back();
        stats_[victim->route].evictions.fetch_add(1, std::memory_order_relaxed);
        store_access::remove(*this, s, victim);
    }
    store_access::prune_pending(*this, s);
    return put_result::stored;
}

std::vector<recent_entry> store::recently_read(const std::vector<bool>& routes,
                                               std::chrono::steady_clock::time_point since,
                                               std::chrono::system_clock::time_point computed_before,
                                               std::size_t max) {
    const auto since_s = steady_seconds(since);
    const auto before_s = system_seconds(computed_before);
    std::vector<recent_entry> out;
    for (std::size_t i = 0; i < shard_count_; ++i) {
        auto& s = *shards_[i];
        std::lock_guard lock(s.mutex);
        std::size_t taken = 0;
        for (const auto& n : s.lru) {
            // The list is in order of last read, but for a read whose clock
            // was taken just before another's lock: one second of slack.
            if (n.last_read + 1 < since_s || taken == max) break;
            if (n.last_read < since_s || n.route >= routes.size() || !routes[n.route] ||
                n.computed_at >= before_s)
                continue;
            out.push_back(recent_entry{std::string(n.key()), n.route, n.last_read});
            ++taken;
        }
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const recent_entry& a, const recent_entry& b) { return a.last_read > b.last_read; });
    if (out.size() > max) out.resize(max);
    return out;
}

std::optional<std::chrono::system_clock::time_point> store::computed_at(std::string_view user_id,
                                                                        std::string_view key) {
    auto& s = shard_for(user_id);
    std::lock_guard lock(s.mutex);
    auto it = s.set.find(key, key_hash{}, key_equal{});
    if (it == s.set.end()) return std::nullopt;
    return std::chrono::system_clock::time_point{std::chrono::seconds{it->computed_at}};
}

std::size_t store::invalidate(std::string_view tag, invalidation mode) {
    auto e = epoch_.fetch_add(1) + 1;
    auto now = clock_.steady_now();
    std::size_t count = 0;

    auto id = tag_id(tag);
    std::optional<std::size_t> route;
    if (tag.starts_with("route:")) {
        for (std::size_t i = 0; i < config().routes.size(); ++i)
            if (tag.substr(6) == config().routes[i].name) route = i;
    }

    for (std::size_t i = 0; i < shard_count_; ++i) {
        auto& s = *shards_[i];
        std::lock_guard lock(s.mutex);
        if (route) {
            auto& r = s.routes[*route];
            r.invalidated_epoch = e;
            if (mode == invalidation::hard) {
                while (!r.members.empty()) {
                    store_access::hit(*this, s, &r.members.front(), mode, now);
                    ++count;
                }
            } else {
                for (auto& n : r.members) {
                    store_access::hit(*this, s, &n, mode, now);
                    ++count;
                }
            }
            continue;
        }
        auto it = s.tags.find(id);
        if (it == s.tags.end()) {
            // No entry carries it here; only a fill in flight could store one.
            if (oldest_active_.load(std::memory_order_acquire) < e) {
                auto& r = store_access::record(*this, s, id);
                r.invalidated_epoch = e;
                s.pending.push_back(id);
            }
            continue;
        }
        const tag_record& r = *it;
        r.invalidated_epoch = e;
        // Collect first: a hard removal may drop the record itself.
        std::vector<node*> hits;
        for (auto& n : r.users) hits.push_back(&n);
        for (auto& link : r.extras) hits.push_back(link.owner);
        for (auto* n : hits) store_access::hit(*this, s, n, mode, now);
        count += hits.size();
    }
    return count;
}

}  // namespace sidecache::cache
