#include "sync/waiter_queue.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <optional>

namespace sidecache::sync {

namespace net = boost::asio;

// One wait: a timer on the waiter's executor, cancelled there to wake it.
struct waiter_queue::waiter {
    explicit waiter(const net::any_io_executor& ex) : timer(ex) {}
    net::steady_timer timer;
    std::optional<wake> ended;  // guarded by the queue's mutex
    std::uint64_t value = 0;    // from wake_one, set with `ended`
};

waiter_queue::waiter_queue(const time_source& clock) : clock_(clock) {}

waiter_queue::~waiter_queue() = default;

// Settles `w`'s outcome unless it is settled already, and resumes it on its
// own executor. Called with mutex_ held.
bool waiter_queue::end_locked(const std::shared_ptr<waiter>& w, wake why) {
    if (w->ended) return false;
    w->ended = why;
    net::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
    return true;
}

void waiter_queue::remove(const std::shared_ptr<waiter>& w) {
    auto it = std::find(waiters_.begin(), waiters_.end(), w);
    if (it != waiters_.end()) {
        waiters_.erase(it);
        count_.store(waiters_.size(), std::memory_order_relaxed);
    }
}

waiter_queue::ticket waiter_queue::enqueue(const net::any_io_executor& ex, steady_time deadline) {
    auto w = std::make_shared<waiter>(ex);
    // A manual clock calls back once advanced past the deadline (maybe at
    // once: then the wait is over before it is queued); the real one leaves
    // it to the timer. Armed before the waiter is queued, where no waker
    // can reach its timer yet.
    std::weak_ptr<waiter> weak = w;
    bool manual = clock_.call_at(deadline, [this, weak] {
        auto w = weak.lock();
        if (!w) return;  // the wait ended and its ticket is gone
        std::lock_guard lock(mutex_);
        if (end_locked(w, wake::timed_out)) remove(w);
    });
    w->timer.expires_at(manual ? steady_time::max() : deadline);
    std::lock_guard lock(mutex_);
    if (shut_down_) end_locked(w, wake::shut_down);
    if (!w->ended) {
        waiters_.push_back(w);
        count_.store(waiters_.size(), std::memory_order_relaxed);
    }
    return {this, std::move(w)};
}

net::awaitable<wake> waiter_queue::ticket::wait() {
    auto& q = *queue_;
    auto w = waiter_;
    {
        // Settled before this coroutine got here (its cancel may still be
        // queued on this executor, and finds no wait): nothing to wait for.
        std::unique_lock lock(q.mutex_);
        if (w->ended) {
            auto why = *w->ended;
            lock.unlock();
            co_return why;
        }
    }
    auto [ec] = co_await w->timer.async_wait(net::as_tuple(net::use_awaitable));
    std::lock_guard lock(q.mutex_);
    if (!w->ended) {
        // Not woken: the real timer expired, or the wait was cancelled.
        w->ended = ec ? wake::cancelled : wake::timed_out;
        q.remove(w);
    }
    co_return *w->ended;
}

net::awaitable<wake> waiter_queue::wait(steady_time deadline) {
    auto t = enqueue(co_await net::this_coro::executor, deadline);
    co_return co_await t.wait();
}

std::uint64_t waiter_queue::ticket::value() const {
    std::lock_guard lock(queue_->mutex_);
    return waiter_->value;
}

bool waiter_queue::wake_one(std::uint64_t value) {
    if (count_.load(std::memory_order_relaxed) == 0) return false;
    std::lock_guard lock(mutex_);
    while (!waiters_.empty()) {
        auto w = std::move(waiters_.front());
        waiters_.pop_front();
        count_.store(waiters_.size(), std::memory_order_relaxed);
        w->value = value;  // no one reads it unless it is woken now
        if (end_locked(w, wake::woken)) return true;
    }
    return false;
}

std::size_t waiter_queue::wake_all() {
    if (count_.load(std::memory_order_relaxed) == 0) return 0;
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (auto& w : waiters_) n += end_locked(w, wake::woken);
    waiters_.clear();
    count_.store(0, std::memory_order_relaxed);
    return n;
}

void waiter_queue::shutdown() {
    std::lock_guard lock(mutex_);
    shut_down_ = true;
    for (auto& w : waiters_) end_locked(w, wake::shut_down);
    waiters_.clear();
    count_.store(0, std::memory_order_relaxed);
}

std::size_t waiter_queue::size() const {
    return count_.load(std::memory_order_relaxed);
}

}  // namespace sidecache::sync
