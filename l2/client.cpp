#include "l2/client.hpp"

#include "external/breaker.hpp"
#include "l2/connection.hpp"
#include "l2/resp.hpp"
#include "sync/waiter_queue.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <limits>
#include <variant>

namespace sidecache::l2 {

namespace net = boost::asio;
using namespace net::experimental::awaitable_operators;
using boost::system::result;
using net::awaitable;
using steady = std::chrono::steady_clock;

namespace {
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// The external API's breaker, counting consecutive failures only (its
// failure-rate rule is switched off by an unreachable min_requests).
conf::breaker_config breaker_settings(const client_options& o) {
    conf::breaker_config c;
    c.consecutive_failures = static_cast<unsigned>(std::max(1, o.breaker_failures));
    c.min_requests = std::numeric_limits<unsigned>::max();
    c.cool_down = std::chrono::duration_cast<conf::duration>(o.breaker_open_for);
    return c;
}

// What the breaker counts as Redis failing: the transport, not an answer.
bool is_transport_failure(const result<reply>& r) {
    return !r && r.error() != make_error_code(error::breaker_open);
}
}  // namespace

struct client::impl {
    impl(net::io_context& ioc, client_options o)
        : ioc(ioc), opts(std::move(o)), breaker(breaker_settings(opts)) {
        const auto n = std::max<std::size_t>(1, opts.connections);
        for (std::size_t i = 0; i < n; ++i)
            slots.push_back(slot{std::make_unique<connection>(ioc.get_executor())});
    }

    struct slot {
        std::unique_ptr<connection> conn;
        bool busy = false;
    };

    awaitable<result<std::size_t>> acquire(steady::time_point deadline);
    void release(std::size_t index);
    awaitable<result<reply>> run(connection& conn, const std::string& request, steady::time_point deadline);

    net::io_context& ioc;
    client_options opts;
    std::vector<slot> slots;
    // Commands waiting for a free connection; a woken one is handed the
    // index + 1 of the connection released to it (0: the client closed).
    sync::waiter_queue idle{sync::real_time()};
    external::circuit_breaker breaker;
    bool closed = false;
};

// A free connection (marked busy), waiting for one until `deadline`.
awaitable<result<std::size_t>> client::impl::acquire(steady::time_point deadline) {
    for (std::size_t i = 0; i < slots.size(); ++i) {
        if (!slots[i].busy) {
            slots[i].busy = true;
            co_return i;
        }
    }
    auto ticket = idle.enqueue(co_await net::this_coro::executor, deadline);
    const auto why = co_await ticket.wait();
    if (why == sync::wake::woken && ticket.value() > 0) co_return ticket.value() - 1;
    if (why == sync::wake::timed_out) co_return make_error_code(error::timeout);
    co_return make_error_code(error::unavailable);
}

// Hands the connection to the oldest waiter (it stays busy), or frees it.
void client::impl::release(std::size_t index) {
    if (!idle.wake_one(index + 1)) slots[index].busy = false;
}

// Connects if needed, then the command, all before `deadline`; a connection
// that times out is closed, since its reply would arrive late and desync it.
awaitable<result<reply>> client::impl::run(connection& conn, const std::string& request,
                                           steady::time_point deadline) {
    auto exchange = [&]() -> awaitable<result<reply>> {
        if (!conn.is_open()) {
            if (auto opened = co_await conn.open(opts); !opened) co_return opened.error();
        }
        co_return co_await conn.exchange(request);
    };
    net::steady_timer timer(ioc, deadline);
    auto raced = co_await (exchange() || timer.async_wait(use_tuple));
    if (raced.index() == 0) co_return std::move(std::get<0>(raced));
    // The cancelled exchange has closed it already if it was reading; this
    // covers every other stage it may have been cancelled in.
    conn.close();
    co_return make_error_code(error::timeout);
}

client::client(net::io_context& ioc, client_options opts)
    : impl_(std::make_unique<impl>(ioc, std::move(opts))) {}

client::~client() {
    close();
}

awaitable<result<reply>> client::command(std::vector<std::string> args) {
    auto& s = *impl_;
    const auto deadline = steady::now() + s.opts.op_timeout;
    if (s.closed) co_return make_error_code(error::unavailable);
    const auto admission = s.breaker.admit(steady::now());
    if (admission == external::circuit_breaker::admission::rejected)
        co_return make_error_code(error::breaker_open);
    const bool probe = admission == external::circuit_breaker::admission::probe;

    // A command that spent its time waiting for a connection tells nothing
    // about Redis (a burst on a small pool): it times out without counting
    // as a failure, unless it was the probe, which must end one way or the other.
    auto index = co_await s.acquire(deadline);
    if (index && steady::now() >= deadline) {
        s.release(*index);
        index = make_error_code(error::timeout);
    }
    if (!index) {
        if (probe) s.breaker.on_failure(steady::now(), true);
        co_return index.error();
    }
    auto r = co_await s.run(*s.slots[*index].conn, format_command(args), deadline);
    s.release(*index);
    if (is_transport_failure(r)) {
        s.breaker.on_failure(steady::now(), probe);
    } else {
        s.breaker.on_success(steady::now(), probe);
    }
    co_return r;
}

bool client::available() const {
    return impl_->breaker.current(steady::now()) != external::circuit_breaker::state::open;
}

void client::close() {
    auto& s = *impl_;
    if (s.closed) return;
    s.closed = true;
    for (auto& slot : s.slots) slot.conn->close();
    s.idle.shutdown();
}

}  // namespace sidecache::l2
