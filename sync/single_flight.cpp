#include "sync/single_flight.hpp"

#include <boost/asio/this_coro.hpp>

namespace sidecache::sync {

namespace net = boost::asio;

net::awaitable<join_result> flight_base::wait(steady_time deadline, std::size_t max_waiters) {
    auto ex = co_await net::this_coro::executor;
    waiter_queue::ticket ticket;
    {
        // Checked and enqueued under the lock land_with() wakes under: no
        // landing falls between the two.
        std::unique_lock lock(mutex_);
        if (landed_) co_return join_result::landed;
        if (waiters_.size() >= max_waiters) co_return join_result::overloaded;
        ticket = waiters_.enqueue(ex, deadline);
    }
    auto why = co_await ticket.wait();
    std::lock_guard lock(mutex_);
    // Landed as the deadline passed: the result is there, take it.
    if (landed_) co_return join_result::landed;
    co_return why == wake::shut_down ? join_result::shut_down : join_result::timed_out;
}

void flight_base::land_with(const std::function<void()>& store) {
    std::lock_guard lock(mutex_);
    store();
    landed_ = true;
    waiters_.wake_all();
}

}  // namespace sidecache::sync
