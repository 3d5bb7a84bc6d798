#include "proxy/server.hpp"

#include "log/logger.hpp"
#include "proxy/server_state.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include <pthread.h>
#include <signal.h>

namespace sidecache::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// Where a coroutine was spawned is where its exceptions end: logged, never
// out of io_context::run.
void log_exception(const char* what, std::exception_ptr e) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        log::error("proxy", fmt::format("{} failed", what), {{"error", ex.what()}});
    } catch (...) {
        log::error("proxy", fmt::format("{} failed", what));
    }
}

tcp::acceptor bind(net::io_context& ioc, const conf::endpoint& at) {
    tcp::acceptor acceptor(ioc);
    const tcp::endpoint ep(net::ip::make_address(at.host), at.port);
    acceptor.open(ep.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(net::socket_base::max_listen_connections);
    return acceptor;
}

// One io thread and its io_context: the sessions it was given, and the
// upstream connections they opened. Nothing in it needs a strand.
struct worker {
    // io_context with its shutdown() reachable: the server ends every
    // worker's coroutines before it destroys any worker's services (a
    // session on one may hold an upstream connection opened on another).
    struct context : net::io_context {
        context() : net::io_context(1) {}
        using net::io_context::shutdown;
    };
    context ioc;
    std::atomic<unsigned> sessions{0};  // live client sessions on it, to balance new ones
};

// The worker with the fewest live sessions (the first on ties).
worker& least_loaded(const std::vector<std::unique_ptr<worker>>& workers) {
    worker* best = workers.front().get();
    for (const auto& w : workers) {
        if (w->sessions.load(std::memory_order_relaxed) < best->sessions.load(std::memory_order_relaxed)) {
            best = w.get();
        }
    }
    return *best;
}

// Accepts on the first worker; each client connection goes to the least
// loaded worker and stays there (its socket, timers and upstream
// connections), like an nginx worker process, so a request is never handed
// between threads. Admin connections stay on the first worker.
net::awaitable<void> accept_loop(std::shared_ptr<server_state> state, tcp::acceptor& acceptor,
                                 const std::vector<std::unique_ptr<worker>>& workers, bool admin) {
    net::steady_timer backoff(acceptor.get_executor());
    while (acceptor.is_open()) {
        worker& target = admin ? *workers.front() : least_loaded(workers);
        auto [ec, socket] = co_await acceptor.async_accept(target.ioc, use_tuple);
        if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
        if (ec) {
            // Out of descriptors and the like: let sessions end, then retry.
            backoff.expires_after(std::chrono::milliseconds(50));
            co_await backoff.async_wait(use_tuple);
            continue;
        }
        if (admin) {
            net::co_spawn(socket.get_executor(), run_admin_session(state, std::move(socket)),
                          [](std::exception_ptr e) { log_exception("admin session", e); });
            continue;
        }
        state->stats.connections_accepted.inc();
        {
            std::lock_guard lock(state->mutex);
            if (state->sessions.size() >= state->settings.current().server.max_connections) {
                state->stats.connections_rejected.inc();
                continue;  // the socket closes here
            }
        }
        target.sessions.fetch_add(1, std::memory_order_relaxed);
        net::co_spawn(socket.get_executor(), run_session(state, std::move(socket)),
                      [&target](std::exception_ptr e) {
                          target.sessions.fetch_sub(1, std::memory_order_relaxed);
                          log_exception("session", e);
                      });
    }
}

// Runs `f` on `ex` and waits for it.
template <class F>
void run_on(const net::any_io_executor& ex, F f) {
    std::promise<void> done;
    net::post(ex, [&] {
        f();
        done.set_value();
    });
    done.get_future().wait();
}

}  // namespace

struct server::impl {
    explicit impl(conf::config cfg) {
        const unsigned n =
            cfg.server.threads ? cfg.server.threads : std::max(1u, std::thread::hardware_concurrency());
        for (unsigned i = 0; i < n; ++i) workers.push_back(std::make_unique<worker>());
        state = std::make_shared<server_state>(std::move(cfg));
    }

    // Declared first: destroyed last, after everything that uses them.
    std::vector<std::unique_ptr<worker>> workers;
    std::shared_ptr<server_state> state;
    std::vector<net::executor_work_guard<net::io_context::executor_type>> work;
    std::optional<tcp::acceptor> acceptor;
    std::optional<tcp::acceptor> admin_acceptor;
    std::uint16_t port = 0;
    std::uint16_t admin_port = 0;
    std::vector<std::thread> threads;
    bool stopped = false;

    ~impl() {
        for (auto& w : workers) w->ioc.shutdown();
        acceptor.reset();
        admin_acceptor.reset();
        state.reset();
    }

    net::io_context& first() { return workers.front()->ioc; }

    bool wait_sessions_until(std::chrono::steady_clock::time_point deadline) {
        std::unique_lock lock(state->mutex);
        return state->sessions_changed.wait_until(lock, deadline, [&] { return state->sessions.empty(); });
    }

    // Posts `f(handle)` to every live session's io thread.
    template <class F>
    void for_each_session(F f) {
        std::lock_guard lock(state->mutex);
        for (auto& [ptr, weak] : state->sessions) {
            if (auto h = weak.lock()) {
                net::post(h->stream.get_executor(), [weak, f] {
                    if (auto h = weak.lock()) f(h);
                });
            }
        }
    }
};

server::server(conf::config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {
    if (auto* access = impl_->state->access.get()) {
        impl_->state->admin.add_stats("access_log", [access] {
            return boost::json::object{{"lines", access->recorded()}, {"dropped", access->dropped()}};
        });
    }
}

server::~server() {
    stop();
}

void server::set_interceptor(std::shared_ptr<interceptor> i) {
    impl_->state->intercept = std::move(i);
}

void server::start() {
    auto& m = *impl_;
    const auto& cfg = m.state->cfg;
    m.acceptor.emplace(bind(m.first(), cfg.server.listen));
    m.port = m.acceptor->local_endpoint().port();
    if (cfg.admin.enabled) {
        m.admin_acceptor.emplace(bind(m.first(), cfg.admin.listen));
        m.admin_port = m.admin_acceptor->local_endpoint().port();
    }
    for (auto& w : m.workers) m.work.push_back(net::make_work_guard(w->ioc));
    net::co_spawn(m.first(), accept_loop(m.state, *m.acceptor, m.workers, false),
                  [](std::exception_ptr e) { log_exception("listener", e); });
    if (m.admin_acceptor) {
        net::co_spawn(m.first(), accept_loop(m.state, *m.admin_acceptor, m.workers, true),
                      [](std::exception_ptr e) { log_exception("admin listener", e); });
    }
    if (cfg.upstream.health_check_interval.count() > 0) {
        net::co_spawn(m.first(), probe_legacy(m.state),
                      [](std::exception_ptr e) { log_exception("legacy probe", e); });
    }
    m.state->listening = true;
    for (auto& w : m.workers) m.threads.emplace_back([&ioc = w->ioc] { ioc.run(); });
}

std::uint16_t server::port() const {
    return impl_->port;
}
std::uint16_t server::admin_port() const {
    return impl_->admin_port;
}

bool server::drain(std::chrono::milliseconds timeout) {
    auto& m = *impl_;
    if (m.stopped) return true;
    m.stopped = true;
    if (m.threads.empty()) return true;  // never started
    const auto deadline = std::chrono::steady_clock::now() + timeout;

    // Idle keep-alive connections get a grace, so that a request their
    // client writes in this instant is answered rather than meeting a closed
    // socket; every answer from now on says "Connection: close" and ends its
    // connection (proxy/session.cpp).
    const auto grace = std::min(m.state->settings.current().server.drain_idle_grace, timeout);
    const auto idle_end = std::chrono::steady_clock::now() + grace;
    m.state->drain_idle_end = idle_end;
    m.state->draining = true;
    m.state->listening = false;
    for (auto* a : {&m.acceptor, &m.admin_acceptor}) {
        if (*a) run_on((*a)->get_executor(), [a] { (*a)->close(); });
    }
    m.for_each_session([idle_end](const std::shared_ptr<session_handle>& h) { close_idle_by(h, idle_end); });
    bool in_time = m.wait_sessions_until(deadline);
    if (!in_time) {
        // Out of time: cut the client side of what is left, give the
        // coroutines a moment to unwind, then stop regardless.
        m.for_each_session([](const std::shared_ptr<session_handle>& h) { h->stream.close(); });
        m.wait_sessions_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(500));
    }
    m.work.clear();
    for (auto& w : m.workers) w->ioc.stop();
    for (auto& t : m.threads) t.join();
    m.threads.clear();
    if (m.state->access) m.state->access->flush();  // the drained requests' lines
    return in_time;
}

void server::wait_for_signal() {
    wait_for_signal(nullptr);
}

void server::wait_for_signal(const std::function<void()>& on_hangup) {
    net::signal_set signals(impl_->first(), SIGTERM, SIGINT);
    if (on_hangup) {
        signals.add(SIGHUP);
        // Its handler is in place: a SIGHUP pending since start comes now.
        sigset_t hangup;
        ::sigemptyset(&hangup);
        ::sigaddset(&hangup, SIGHUP);
        ::pthread_sigmask(SIG_UNBLOCK, &hangup, nullptr);
    }
    for (;;) {
        // A signal that comes while no wait is pending is kept by the set.
        std::promise<int> got;
        signals.async_wait([&](const boost::system::error_code& ec, int signo) {
            if (!ec) got.set_value(signo);
        });
        if (got.get_future().get() != SIGHUP) return;
        on_hangup();
    }
}

net::io_context& server::context() {
    return impl_->first();
}
std::vector<net::io_context*> server::contexts() {
    std::vector<net::io_context*> out;
    for (auto& w : impl_->workers) out.push_back(&w->ioc);
    return out;
}
upstream::pool& server::upstream_pool() {
    return impl_->state->pool;
}
admin_registry& server::admin() {
    return impl_->state->admin;
}
metrics::registry& server::metrics() {
    return impl_->state->metrics;
}
const conf::config& server::config() const {
    return impl_->state->cfg;
}
conf::live_config& server::settings() {
    return impl_->state->settings;
}
void server::set_access_log(bool on) {
    impl_->state->set_access_log(on);
}

}  // namespace sidecache::proxy
