#pragma once
// A queue of coroutines waiting for something, each woken (oldest first, or
// all), timed out at its deadline, cancelled, or shut down. Whatever thread
// wakes a waiter, the waiter resumes on the executor it waits on: its timer
// lives there and is only touched there (the waker posts to it).
//
// Deadlines are read from the time_source given to the queue: the real clock
// arms a timer at the deadline; a manual clock times waiters out when a test
// advances it past their deadline.
//
// Thread-safe. A waiter's executor must not run two handlers at once (a
// single-threaded io_context, or a strand). To check a condition and wait
// for it without missing a wake, enqueue() under the lock that guards the
// condition and wake under the same lock; then co_await the ticket outside
// it. The queue must outlive every wait on it.

#include "sync/time_source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

namespace sidecache::sync {

using steady_time = std::chrono::steady_clock::time_point;

// Why a wait ended.
enum class wake {
    woken,      // wake_one() or wake_all()
    timed_out,  // the deadline passed (by the queue's clock)
    cancelled,  // the waiting operation was cancelled (cancellation slot)
    shut_down,  // shutdown(): nothing more will come
};

class waiter_queue {
    struct waiter;

public:
    // One enqueued wait; co_await wait() once.
    class ticket {
    public:
        ticket() = default;
        boost::asio::awaitable<wake> wait();
        // After wait() returned woken: the value given to wake_one().
        std::uint64_t value() const;

    private:
        friend class waiter_queue;
        ticket(waiter_queue* q, std::shared_ptr<waiter> w) : queue_(q), waiter_(std::move(w)) {}
        waiter_queue* queue_ = nullptr;
        std::shared_ptr<waiter> waiter_;
    };

    // `clock` must outlive the queue.
    explicit waiter_queue(const time_source& clock);
    ~waiter_queue();
    waiter_queue(const waiter_queue&) = delete;
    waiter_queue& operator=(const waiter_queue&) = delete;

    // Enters the queue now, to wait on `ex` (the caller's own executor: call
    // it from there) until woken or `deadline`.
    ticket enqueue(const boost::asio::any_io_executor& ex, steady_time deadline);
    // enqueue() on the calling coroutine's executor, and wait.
    boost::asio::awaitable<wake> wait(steady_time deadline);

    // Wakes the oldest waiter still waiting, handing it `value` (e.g. what
    // the waker reserved for it); false if there was none.
    bool wake_one(std::uint64_t value = 0);
    // Wakes every waiter; returns how many.
    std::size_t wake_all();
    // Ends every wait with wake::shut_down, and every later one at once.
    void shutdown();

    // Waiters not yet woken (timed-out ones leave as they resume).
    std::size_t size() const;
    const time_source& clock() const { return clock_; }

private:
    bool end_locked(const std::shared_ptr<waiter>& w, wake why);
    void remove(const std::shared_ptr<waiter>& w);

    const time_source& clock_;
    mutable std::mutex mutex_;
    std::deque<std::shared_ptr<waiter>> waiters_;
    // waiters_.size(), read without the lock so that a wake with nobody
    // waiting (a pool's every release) costs no lock. Exact for a caller
    // that enqueues and wakes under one lock of its own.
    std::atomic<std::size_t> count_{0};
    bool shut_down_ = false;
};

}  // namespace sidecache::sync
