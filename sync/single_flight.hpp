#pragma once
// A single-flight table: key -> the work in flight for it. The first caller
// of a key leads (does the work, then lands its result); callers arriving
// meanwhile join and wait for that result, each with its own deadline. A
// joiner that gives up does not cancel the leader. The leader is an RAII
// handle: if it is destroyed without landing (the work threw), the flight
// lands empty, leaves the table, and the next caller of the key leads anew.
//
// detach_if(pred) takes the flights of the keys it selects out of the table
// while they run: later callers start a new flight; a detached one still
// lands for those who joined it, and its leader can see detached().
//
// Thread-safe. Joiners resume on their own executors (sync::waiter_queue).
// The table must outlive its leaders.

#include "sync/waiter_queue.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace sidecache::sync {

// How a joiner's wait for a flight ended.
enum class join_result {
    landed,      // the flight landed: read its result
    timed_out,   // the joiner's deadline passed first
    overloaded,  // max_waiters were waiting already: refused at once
    shut_down,   // the flight's waiter queue was shut down
};

// The part of a flight that does not depend on its result type.
class flight_base {
public:
    explicit flight_base(const time_source& clock) : waiters_(clock) {}

    // Waits on the calling coroutine's executor until the flight lands or
    // `deadline`; refused at once if `max_waiters` are waiting already.
    boost::asio::awaitable<join_result> wait(steady_time deadline, std::size_t max_waiters);

    // Whether detach_if() took this flight out of its table.
    bool detached() const { return detached_.load(std::memory_order_acquire); }

protected:
    // Publishes: `store` runs under the lock, then every joiner is woken.
    void land_with(const std::function<void()>& store);

    mutable std::mutex mutex_;
    bool landed_ = false;
    std::atomic<bool> detached_{false};
    waiter_queue waiters_;
};

template <class Result>
class single_flight {
public:
    class flight final : public flight_base {
    public:
        using flight_base::flight_base;
        // After wait() returned landed: the leader's result, or nullopt if
        // the leader was destroyed without landing.
        const std::optional<Result>& result() const { return result_; }

    private:
        friend class single_flight;
        std::optional<Result> result_;
    };
    using flight_ptr = std::shared_ptr<flight>;

    // The leader of one flight. Land it once; destroying it without landing
    // lands it empty.
    class leader {
    public:
        leader(leader&& other) noexcept
            : table_(std::exchange(other.table_, nullptr)),
              key_(std::move(other.key_)),
              flight_(std::move(other.flight_)) {}
        leader& operator=(leader&&) = delete;
        ~leader() {
            if (table_) land_result(std::nullopt);
        }

        // Leaves the table (if still in it), then hands `r` to the joiners.
        void land(Result r) { land_result(std::move(r)); }
        const flight& current() const { return *flight_; }
        const std::string& key() const { return key_; }

    private:
        friend class single_flight;
        leader(single_flight* t, std::string key, flight_ptr f)
            : table_(t), key_(std::move(key)), flight_(std::move(f)) {}
        void land_result(std::optional<Result> r) {
            auto* t = std::exchange(table_, nullptr);
            t->erase_if_current(key_, flight_);
            flight_->land_with([&] { flight_->result_ = std::move(r); });
        }

        single_flight* table_;
        std::string key_;
        flight_ptr flight_;
    };

    struct joined {
        flight_ptr flight;
        std::optional<leader> lead;  // set when this call started the flight
    };

    // `clock` (read for joiners' deadlines) must outlive the table.
    explicit single_flight(const time_source& clock) : clock_(clock) {}
    single_flight(const single_flight&) = delete;
    single_flight& operator=(const single_flight&) = delete;

    // The flight of `key`, started if there is none (then `lead` is set).
    joined join_or_start(std::string_view key) {
        auto& s = shard_for(key);
        std::lock_guard lock(s.mutex);
        auto it = s.map.find(key);
        if (it != s.map.end()) return {it->second, std::nullopt};
        auto f = std::make_shared<flight>(clock_);
        std::string k(key);
        s.map.emplace(k, f);
        return {f, leader(this, std::move(k), f)};
    }

    // The flight of `key` in progress, if any (to join it without starting
    // one: a caller that checks something else first, under a lock of its
    // own, before join_or_start).
    flight_ptr find(std::string_view key) {
        auto& s = shard_for(key);
        std::lock_guard lock(s.mutex);
        auto it = s.map.find(key);
        return it == s.map.end() ? nullptr : it->second;
    }

    // Takes every flight whose key satisfies `pred` out of the table while it
    // runs: later callers of its key start anew. Returns how many. `pred`
    // runs under a shard lock.
    template <class Pred>
    std::size_t detach_if(Pred pred) {
        std::size_t n = 0;
        for (auto& s : shards_) {
            std::lock_guard lock(s.mutex);
            for (auto it = s.map.begin(); it != s.map.end();) {
                if (!pred(std::string_view(it->first))) {
                    ++it;
                    continue;
                }
                it->second->detached_.store(true, std::memory_order_release);
                it = s.map.erase(it);
                ++n;
            }
        }
        return n;
    }

    // Flights in the table.
    std::size_t size() const {
        std::size_t n = 0;
        for (auto& s : shards_) {
            std::lock_guard lock(s.mutex);
            n += s.map.size();
        }
        return n;
    }

private:
    struct transparent_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    struct shard {
        mutable std::mutex mutex;
        std::unordered_map<std::string, flight_ptr, transparent_hash, std::equal_to<>> map;
    };
    static constexpr std::size_t shard_count = 16;

    shard& shard_for(std::string_view key) {
        return shards_[std::hash<std::string_view>{}(key) % shard_count];
    }

    void erase_if_current(const std::string& key, const flight_ptr& f) {
        auto& s = shard_for(key);
        std::lock_guard lock(s.mutex);
        auto it = s.map.find(key);
        if (it != s.map.end() && it->second == f) s.map.erase(it);
    }

    const time_source& clock_;
    shard shards_[shard_count];
};

}  // namespace sidecache::sync
