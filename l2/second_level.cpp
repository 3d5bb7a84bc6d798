#include "l2/second_level.hpp"

#include "l2/value.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace sidecache::l2 {

namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

// A missing generation is set from Redis's clock (microseconds), never from
// 0 or 1: a generation evicted and set again must not equal the one a
// stored value carries. TIME's two fields are strings; the result is one
// decimal string that INCR accepts.
constexpr std::string_view new_generation = R"(local t = redis.call('TIME')
local function fresh() return t[1] .. string.format('%06d', tonumber(t[2])) end
)";

// KEYS: the user's and the global generation. Returns both, setting those missing.
const std::string init_script = std::string(new_generation) + R"(local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if not v then v = fresh(); redis.call('SET', k, v) end
  out[i] = v
end
return out)";

// KEYS: one generation. Bumped: INCR, or set anew when missing.
const std::string bump_script = std::string(new_generation) + R"(if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCR', KEYS[1])
end
redis.call('SET', KEYS[1], fresh())
return 1)";

// KEYS: value, user generation, global generation; ARGV: value, the two
// generations read before the fill, PX. Stored only if both are unchanged.
const std::string store_script =
    R"(if redis.call('GET', KEYS[2]) ~= ARGV[2] or redis.call('GET', KEYS[3]) ~= ARGV[3] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
return 1)";

bool is_string(const reply& r) {
    return r.type == reply::kind::string;
}

}  // namespace

struct second_level_cache::state {
    state(const conf::l2_config& c, std::vector<binding> b, net::any_io_executor bg, redis_commands& bgc)
        : config(c),
          bindings(std::move(b)),
          background(std::move(bg)),
          background_commands(bgc),
          retry_timer(background) {
        for (std::size_t i = 0; i < bindings.size(); ++i)
            down.push_back(std::make_unique<std::atomic<std::int64_t>>(0));
    }

    const conf::l2_config& config;
    std::vector<binding> bindings;
    // Per binding: until when its breaker is open as last seen (steady
    // nanoseconds; 0: closed). Read by /readyz from another thread; a thread
    // that sees no traffic after a failure stops counting as down once
    // breaker_open_for passed (it would try Redis again then).
    std::vector<std::unique_ptr<std::atomic<std::int64_t>>> down;
    net::any_io_executor background;
    redis_commands& background_commands;
    second_level_stats stats;

    // Invalidations not yet made in Redis: user -> the sequence number of
    // its latest invalidation; all_pending likewise (0: none). A bump that
    // succeeds clears an entry only if no invalidation came since it began.
    mutable std::mutex mutex;
    std::map<std::string, std::uint64_t, std::less<>> pending_users;
    std::uint64_t pending_all = 0;
    std::uint64_t held_all = 0;  // pending_all's sequence while its bump is held (0: none)
    std::uint64_t sequence = 0;
    bool draining = false;
    bool stopping = false;
    std::atomic<std::size_t> pending_count{0};  // lets reads skip the lock when 0
    net::steady_timer retry_timer;

    // Records what binding `at`'s client says of its breaker now.
    void note_breaker(std::size_t at) {
        std::int64_t until = 0;
        if (!bindings[at].commands->available())
            until = (std::chrono::steady_clock::now() + config.breaker_open_for).time_since_epoch().count();
        down[at]->store(until, std::memory_order_relaxed);
    }

    std::string value_key(std::string_view key) const { return config.key_prefix + "v:" + std::string(key); }
    std::string user_key(std::string_view user) const {
        return config.key_prefix + "gen:u:" + std::string(user);
    }
    std::string all_key() const { return config.key_prefix + "gen:all"; }

    bool pending(std::string_view user) const {
        if (pending_count.load() == 0) return false;
        std::lock_guard lock(mutex);
        return pending_all != 0 || pending_users.contains(user);
    }

    void publish_count() { pending_count.store(pending_users.size() + (pending_all != 0 ? 1 : 0)); }

    // The Redis of the calling coroutine's io_context, if it has one.
    std::size_t binding_index(const net::any_io_executor& ex) const {
        auto& context = net::query(ex, net::execution::context);
        for (std::size_t i = 0; i < bindings.size(); ++i)
            if (bindings[i].context == &context) return i;
        return bindings.size();
    }

    // One command, its failure counted. nullopt: failed (or a "-ERR" reply).
    net::awaitable<std::optional<reply>> call(redis_commands& redis, std::vector<std::string> args) {
        std::size_t sent = 0;
        for (const auto& a : args) sent += a.size();
        stats.bytes_written.fetch_add(sent, std::memory_order_relaxed);
        auto r = co_await redis.command(std::move(args));
        if (!r) {
            stats.errors.fetch_add(1, std::memory_order_relaxed);
            if (r.error() == error::timeout) stats.timeouts.fetch_add(1, std::memory_order_relaxed);
            co_return std::nullopt;
        }
        if (r->type == reply::kind::error) {
            stats.errors.fetch_add(1, std::memory_order_relaxed);
            co_return std::nullopt;
        }
        co_return std::move(*r);
    }

    net::awaitable<bool> bump(std::string key) {
        // (a braced list inside co_await trips GCC 12: built first)
        std::vector<std::string> args{"EVAL", bump_script, "1", std::move(key)};
        auto r = co_await call(background_commands, std::move(args));
        (r ? stats.bumps : stats.bump_failures).fetch_add(1, std::memory_order_relaxed);
        co_return r.has_value();
    }

    struct attempt {
        cache::second_level_read read;
        bool miss = false;      // read, nothing usable: the fill runs
        bool rejected = false;  // of a miss: a value was there, not served
    };
    net::awaitable<attempt> read_once(std::size_t at, std::string_view key, std::string_view user_id);
    net::awaitable<bool> take_fill_lock(std::size_t at, std::string_view key,
                                        const cache::second_level_read& ticket);
    net::awaitable<attempt> wait_for_fill(std::size_t at, std::string_view key, std::string_view user_id,
                                          attempt last);
    net::awaitable<bool> generations(redis_commands& redis, std::string_view user_id, const reply& user_gen,
                                     const reply& all_gen, cache::second_level_read& out);
    // Whether the drain has a bump to make (under the mutex).
    bool bumpable() const { return (pending_all != 0 && pending_all != held_all) || !pending_users.empty(); }
    // Starts the drain unless it runs (under the mutex).
    void start_drain() {
        if (draining || stopping || !bumpable()) return;
        draining = true;
        // Posted: co_spawn starts inline when called on `background`'s
        // thread (release_held, from the fleet lease), where drain() would
        // lock the mutex held here.
        net::post(background, [this] { net::co_spawn(background, drain(), [](std::exception_ptr) {}); });
    }

    net::awaitable<bool> drain_once();
    net::awaitable<void> drain();
};

// One pass over the pending invalidations; false if a bump failed.
net::awaitable<bool> second_level_cache::state::drain_once() {
    std::uint64_t all;
    std::vector<std::pair<std::string, std::uint64_t>> users;
    {
        std::lock_guard lock(mutex);
        all = pending_all == held_all ? 0 : pending_all;
        users.assign(pending_users.begin(), pending_users.end());
    }
    if (all != 0) {
        if (!co_await bump(all_key())) co_return false;
        std::lock_guard lock(mutex);
        if (pending_all == all) pending_all = 0;
        publish_count();
    }
    for (auto& [user, seq] : users) {
        if (!co_await bump(user_key(user))) co_return false;
        std::lock_guard lock(mutex);
        if (auto it = pending_users.find(user); it != pending_users.end() && it->second == seq)
            pending_users.erase(it);
        publish_count();
    }
    co_return true;
}

// Bumps the pending generations until none is left, retrying after a
// failure with a backoff (50 ms doubling to 1 s). One runs at a time.
net::awaitable<void> second_level_cache::state::drain() {
    auto backoff = std::chrono::milliseconds{50};
    for (;;) {
        {
            std::lock_guard lock(mutex);
            if (stopping || !bumpable()) {
                draining = false;
                co_return;
            }
        }
        if (co_await drain_once()) {
            backoff = 50ms;
            continue;
        }
        retry_timer.expires_after(backoff);
        co_await retry_timer.async_wait(net::as_tuple(net::use_awaitable));
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1s);
    }
}

second_level_cache::second_level_cache(const conf::l2_config& config, std::vector<binding> bindings,
                                       net::any_io_executor background, redis_commands& background_commands)
    : state_(
          std::make_unique<state>(config, std::move(bindings), std::move(background), background_commands)),
      stats_(state_->stats) {}

second_level_cache::~second_level_cache() = default;

namespace {

// The hit in `value` if it decodes as `key`'s and carries the generations
// `out` holds (those current), into `out`. False: not usable.
bool take_hit(const reply& value, std::string_view key, cache::second_level_read& out) {
    if (!is_string(value)) return false;
    auto decoded = decode(value.str, key);
    if (!decoded || decoded->user_generation != out.user_generation ||
        decoded->global_generation != out.global_generation)
        return false;
    cache::fill_result hit;
    hit.status = decoded->status;
    hit.headers = std::move(decoded->headers);
    hit.body = std::move(decoded->body);
    hit.tags = std::move(decoded->tags);
    out.computed_at =
        std::chrono::system_clock::time_point{std::chrono::milliseconds{decoded->computed_at_ms}};
    out.expires_at = std::chrono::system_clock::time_point{std::chrono::milliseconds{decoded->expires_at_ms}};
    out.hit = std::move(hit);
    return true;
}

bool is_array_of_strings(const std::optional<reply>& r, std::size_t n) {
    if (!r || r->type != reply::kind::array || r->elements.size() != n) return false;
    for (const auto& e : r->elements)
        if (!is_string(e)) return false;
    return true;
}

}  // namespace

// The generations of `user_id` and of all into `out`, set in Redis where
// missing (never set, or evicted: then no value can be current).
net::awaitable<bool> second_level_cache::state::generations(redis_commands& redis, std::string_view user_id,
                                                            const reply& user_gen, const reply& all_gen,
                                                            cache::second_level_read& out) {
    if (is_string(user_gen) && is_string(all_gen)) {
        out.user_generation = user_gen.str;
        out.global_generation = all_gen.str;
        co_return true;
    }
    std::vector<std::string> args{"EVAL", init_script, "2", user_key(user_id), all_key()};
    auto init = co_await call(redis, std::move(args));
    if (!is_array_of_strings(init, 2)) co_return false;
    out.user_generation = std::move(init->elements[0].str);
    out.global_generation = std::move(init->elements[1].str);
    co_return true;
}

// One read: a hit (counted), a miss (counted by the caller: once per
// request however many reads it made) or neither (skipped or failed: no ticket).
net::awaitable<second_level_cache::state::attempt> second_level_cache::state::read_once(
    std::size_t at, std::string_view key, std::string_view user_id) {
    attempt out;
    auto& redis = *bindings[at].commands;
    note_breaker(at);
    if (!redis.available() || pending(user_id)) {
        stats.skipped.fetch_add(1, std::memory_order_relaxed);
        co_return out;
    }
    std::vector<std::string> mget{"MGET", value_key(key), user_key(user_id), all_key()};
    auto got = co_await call(redis, std::move(mget));
    note_breaker(at);
    if (!got || got->type != reply::kind::array || got->elements.size() != 3) co_return out;
    std::size_t read_bytes = 0;
    for (const auto& e : got->elements) read_bytes += e.str.size();
    stats.bytes_read.fetch_add(read_bytes, std::memory_order_relaxed);
    if (!co_await generations(redis, user_id, got->elements[1], got->elements[2], out.read)) {
        out.read = {};
        out.miss = true;
        co_return out;
    }
    // An invalidation during the read: its generations may be the old ones.
    if (pending(user_id)) {
        stats.skipped.fetch_add(1, std::memory_order_relaxed);
        co_return attempt{};
    }
    out.read.may_store = true;
    if (take_hit(got->elements[0], key, out.read)) {
        stats.hits.fetch_add(1, std::memory_order_relaxed);
        co_return out;
    }
    out.rejected = is_string(got->elements[0]);
    out.miss = true;
    co_return out;
}

// Whether this replica fills `key` after a miss read with `ticket`: it took
// the fill lock, or Redis did not answer (then nobody waits on it). The
// lock names the generations read, so an invalidation frees the key at once.
net::awaitable<bool> second_level_cache::state::take_fill_lock(std::size_t at, std::string_view key,
                                                               const cache::second_level_read& ticket) {
    std::vector<std::string> args{"SET",
                                  config.key_prefix + "lock:" + ticket.user_generation + ":" +
                                      ticket.global_generation + ":" + std::string(key),
                                  "1",
                                  "NX",
                                  "PX",
                                  std::to_string(config.fill_lock_ttl.count())};
    auto r = co_await call(*bindings[at].commands, std::move(args));
    note_breaker(at);
    co_return !r || r->type != reply::kind::nil;
}

// Another replica fills `key`: its value is read every lock_poll until it
// is there or fill_lock_wait passed; then this one fills (with the latest
// ticket), or stores nothing if an invalidation came meanwhile.
net::awaitable<second_level_cache::state::attempt> second_level_cache::state::wait_for_fill(
    std::size_t at, std::string_view key, std::string_view user_id, attempt last) {
    constexpr auto lock_poll = 10ms;
    stats.lock_waits.fetch_add(1, std::memory_order_relaxed);
    const auto until = std::chrono::steady_clock::now() + config.fill_lock_wait;
    net::steady_timer timer(co_await net::this_coro::executor);
    while (std::chrono::steady_clock::now() < until) {
        timer.expires_at(std::min(std::chrono::steady_clock::now() + lock_poll, until));
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        auto again = co_await read_once(at, key, user_id);
        if (again.read.hit) stats.lock_hits.fetch_add(1, std::memory_order_relaxed);
        if (again.read.hit || !again.miss) co_return again;
        last = std::move(again);
    }
    co_return last;
}

net::awaitable<cache::second_level_read> second_level_cache::read(std::string_view key,
                                                                  std::string_view user_id) {
    auto& s = *state_;
    auto at = s.binding_index(co_await net::this_coro::executor);
    if (at == s.bindings.size()) co_return cache::second_level_read{};
    auto got = co_await s.read_once(at, key, user_id);
    // Counted once per request, however many reads its wait made.
    if (got.rejected) s.stats.rejected.fetch_add(1, std::memory_order_relaxed);
    if (got.miss && got.read.may_store && s.config.fill_lock_wait > 0ms &&
        !co_await s.take_fill_lock(at, key, got.read))
        got = co_await s.wait_for_fill(at, key, user_id, std::move(got));
    if (got.miss) s.stats.misses.fetch_add(1, std::memory_order_relaxed);
    co_return std::move(got.read);
}

net::awaitable<void> second_level_cache::store(std::string key, std::string user_id,
                                               cache::second_level_read ticket, cache::fill_result result,
                                               std::chrono::system_clock::time_point computed_at,
                                               std::chrono::system_clock::time_point expires_at,
                                               std::chrono::milliseconds remaining) {
    auto& s = *state_;
    if (!ticket.may_store || remaining <= 0ms) co_return;
    auto at = s.binding_index(co_await net::this_coro::executor);
    if (at == s.bindings.size()) co_return;
    auto& redis = *s.bindings[at].commands;
    if (s.pending(user_id)) {
        s.stats.store_invalidated.fetch_add(1, std::memory_order_relaxed);
        co_return;
    }
    stored_value v;
    v.key = key;
    v.user_generation = std::move(ticket.user_generation);
    v.global_generation = std::move(ticket.global_generation);
    auto unix_ms = [](std::chrono::system_clock::time_point t) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    };
    v.computed_at_ms = unix_ms(computed_at);
    v.expires_at_ms = unix_ms(expires_at);
    v.status = result.status;
    v.headers = std::move(result.headers);
    v.tags = std::move(result.tags);
    v.body = std::move(result.body);
    auto bytes = encode(v);
    if (bytes.size() > s.config.max_value_bytes) {
        s.stats.store_too_large.fetch_add(1, std::memory_order_relaxed);
        co_return;
    }
    if (!redis.available()) {
        s.stats.store_failed.fetch_add(1, std::memory_order_relaxed);
        co_return;
    }
    std::vector<std::string> args{"EVAL",
                                  store_script,
                                  "3",
                                  s.value_key(key),
                                  s.user_key(user_id),
                                  s.all_key(),
                                  std::move(bytes),
                                  std::move(v.user_generation),
                                  std::move(v.global_generation),
                                  std::to_string(remaining.count())};
    auto r = co_await s.call(redis, std::move(args));
    s.note_breaker(at);
    if (!r || r->type != reply::kind::integer) {
        s.stats.store_failed.fetch_add(1, std::memory_order_relaxed);
        co_return;
    }
    (r->integer == 1 ? s.stats.stores : s.stats.store_invalidated).fetch_add(1, std::memory_order_relaxed);
}

void second_level_cache::invalidate(std::string_view tag) {
    auto& s = *state_;
    constexpr std::string_view user_prefix = "user:";
    std::lock_guard lock(s.mutex);
    if (s.stopping) return;
    if (tag.starts_with(user_prefix))
        s.pending_users[std::string(tag.substr(user_prefix.size()))] = ++s.sequence;
    else
        s.pending_all = ++s.sequence;
    s.publish_count();
    s.start_drain();
}

net::awaitable<std::optional<reply>> second_level_cache::call(redis_commands& redis,
                                                              std::vector<std::string> args) {
    return state_->call(redis, std::move(args));
}

void second_level_cache::invalidate_held() {
    auto& s = *state_;
    std::lock_guard lock(s.mutex);
    if (s.stopping) return;
    s.pending_all = s.held_all = ++s.sequence;
    s.publish_count();
}

void second_level_cache::release_held(bool bump) {
    auto& s = *state_;
    std::lock_guard lock(s.mutex);
    if (s.held_all == 0) return;
    // Not cleared if an invalidation of all came since: that one is bumped.
    if (!bump && s.pending_all == s.held_all) s.pending_all = 0;
    s.held_all = 0;
    s.publish_count();
    s.start_drain();
}

void second_level_cache::stop() {
    auto& s = *state_;
    std::lock_guard lock(s.mutex);
    s.stopping = true;
    net::post(s.background, [&s] { s.retry_timer.cancel(); });
}

bool second_level_cache::degraded() const {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    for (const auto& d : state_->down)
        if (d->load(std::memory_order_relaxed) > now) return true;
    return false;
}

std::size_t second_level_cache::pending() const {
    return state_->pending_count.load();
}

}  // namespace sidecache::l2
