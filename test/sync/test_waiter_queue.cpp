// The waiter queue on io_contexts and a manual clock: wake one/all, time-outs
// by the clock, wakes from other threads resuming on the waiter's executor,
// cancellation, shutdown, many waiters.
#include "sync/time_source.hpp"
#include "sync/waiter_queue.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

using namespace sidecache;
using namespace std::chrono_literals;
namespace net = boost::asio;
using sync::wake;

namespace {

struct fixture {
    sync::manual_time_source clock;
    net::io_context ioc;
    sync::waiter_queue queue{clock};
    std::vector<std::optional<wake>> ends;  // by waiter, in order of spawn

    // A waiter whose outcome lands in ends[i].
    std::size_t spawn(std::chrono::steady_clock::duration timeout = 10s) {
        auto i = ends.size();
        ends.emplace_back();
        auto deadline = clock.steady_now() + timeout;
        net::co_spawn(
            ioc, [this, i, deadline]() -> net::awaitable<void> { ends[i] = co_await queue.wait(deadline); },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        return i;
    }

    void settle() {
        ioc.restart();
        ioc.poll();
    }

    std::size_t ended() const {
        std::size_t n = 0;
        for (auto& e : ends) n += e.has_value();
        return n;
    }
};

}  // namespace

TEST_CASE("waiter_queue: wake_one wakes the oldest waiter, wake_all the rest", "[unit]") {
    fixture f;
    for (int i = 0; i < 3; ++i) f.spawn();
    f.settle();
    REQUIRE(f.queue.size() == 3);
    CHECK(f.ended() == 0);

    CHECK(f.queue.wake_one());
    f.settle();
    CHECK(f.ends[0] == wake::woken);
    CHECK_FALSE(f.ends[1]);
    CHECK_FALSE(f.ends[2]);

    CHECK(f.queue.wake_all() == 2);
    f.settle();
    CHECK(f.ends[1] == wake::woken);
    CHECK(f.ends[2] == wake::woken);
    CHECK(f.queue.size() == 0);
    CHECK_FALSE(f.queue.wake_one());
}

TEST_CASE("waiter_queue: a waiter times out when the manual clock passes its deadline", "[unit]") {
    fixture f;
    f.spawn(5s);
    f.spawn(8s);
    f.settle();
    f.clock.advance(4999ms);
    f.settle();
    CHECK(f.ended() == 0);
    f.clock.advance(1ms);
    f.settle();
    CHECK(f.ends[0] == wake::timed_out);
    CHECK_FALSE(f.ends[1]);
    CHECK(f.queue.size() == 1);
    // The timed-out waiter left the queue: the wake goes to the next one.
    CHECK(f.queue.wake_one());
    f.settle();
    CHECK(f.ends[1] == wake::woken);
    // A deadline already past ends the wait at once.
    auto late = f.spawn(-1s);
    f.settle();
    CHECK(f.ends[late] == wake::timed_out);
}

TEST_CASE("waiter_queue: the real clock times out on a real timer", "[unit]") {
    net::io_context ioc;
    sync::waiter_queue queue{sync::real_time()};
    std::optional<wake> end;
    auto start = std::chrono::steady_clock::now();
    net::co_spawn(
        ioc, [&]() -> net::awaitable<void> { end = co_await queue.wait(start + 20ms); }, net::detached);
    ioc.run_for(10s);
    CHECK(end == wake::timed_out);
    CHECK(std::chrono::steady_clock::now() - start >= 20ms);
}

TEST_CASE("waiter_queue: a wake from another thread resumes the waiter on its own executor", "[unit]") {
    sync::manual_time_source clock;
    sync::waiter_queue queue{clock};
    constexpr int threads = 2, per_thread = 50;
    std::vector<std::unique_ptr<net::io_context>> iocs;
    std::atomic<int> waiting{0}, on_own_thread{0}, woken{0};
    for (int t = 0; t < threads; ++t) {
        iocs.push_back(std::make_unique<net::io_context>(1));
        auto& ioc = *iocs.back();
        for (int i = 0; i < per_thread; ++i)
            net::co_spawn(
                ioc,
                [&, deadline = clock.steady_now() + 10s]() -> net::awaitable<void> {
                    auto ticket = queue.enqueue(ioc.get_executor(), deadline);
                    ++waiting;
                    auto why = co_await ticket.wait();
                    on_own_thread += ioc.get_executor().running_in_this_thread();
                    woken += why == wake::woken;
                },
                net::detached);
    }
    std::vector<std::thread> runners;
    for (auto& ioc : iocs) runners.emplace_back([&ioc] { ioc->run(); });
    // Wait (with a deadline) until every waiter is queued, then wake them
    // from this thread, a third one.
    auto limit = std::chrono::steady_clock::now() + 10s;
    while (waiting < threads * per_thread && std::chrono::steady_clock::now() < limit)
        std::this_thread::yield();
    REQUIRE(waiting == threads * per_thread);
    for (int i = 0; i < per_thread; ++i) CHECK(queue.wake_one());
    CHECK(queue.wake_all() == std::size_t(threads * per_thread - per_thread));
    for (auto& r : runners) r.join();  // each io_context runs out of work once its waiters resumed
    CHECK(woken == threads * per_thread);
    CHECK(on_own_thread == threads * per_thread);
}

TEST_CASE("waiter_queue: a cancelled wait ends and leaves the queue", "[unit]") {
    fixture f;
    net::cancellation_signal cancel;
    std::optional<wake> end;
    net::co_spawn(
        f.ioc, [&]() -> net::awaitable<void> { end = co_await f.queue.wait(f.clock.steady_now() + 10s); },
        net::bind_cancellation_slot(cancel.slot(), net::detached));
    f.spawn();
    f.settle();
    REQUIRE(f.queue.size() == 2);
    cancel.emit(net::cancellation_type::terminal);
    f.settle();
    CHECK(end == wake::cancelled);
    CHECK(f.queue.size() == 1);
    CHECK_FALSE(f.ends[0]);
}

TEST_CASE("waiter_queue: shutdown ends every wait, and every later one at once", "[unit]") {
    fixture f;
    f.spawn();
    f.spawn();
    f.settle();
    f.queue.shutdown();
    f.settle();
    CHECK(f.ends[0] == wake::shut_down);
    CHECK(f.ends[1] == wake::shut_down);
    f.spawn();
    f.settle();
    CHECK(f.ends[2] == wake::shut_down);
    CHECK_FALSE(f.queue.wake_one());
}

TEST_CASE("waiter_queue: many waiters, some timing out, the others woken", "[unit]") {
    fixture f;
    constexpr int n = 2000;
    for (int i = 0; i < n; ++i) f.spawn(i % 2 ? 5s : 10s);
    f.settle();
    REQUIRE(f.queue.size() == n);
    f.clock.advance(5s);
    f.settle();
    CHECK(f.queue.size() == n / 2);
    CHECK(f.queue.wake_all() == n / 2);
    f.settle();
    REQUIRE(f.ended() == n);
    for (int i = 0; i < n; ++i) CHECK(f.ends[i] == (i % 2 ? wake::timed_out : wake::woken));
}
