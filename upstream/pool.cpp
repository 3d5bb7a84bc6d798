#include "upstream/pool.hpp"

#include "sync/waiter_queue.hpp"
#include "upstream/connection.hpp"
#include "upstream/forward.hpp"
#include "upstream/head_rules.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <vector>

namespace sidecache::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// Whether an idle connection still looks usable: the upstream has not closed
// it and sent nothing unasked. A non-blocking peek, no wait.
bool looks_alive(connection& c) {
    auto& sock = c.stream.socket();
    if (!sock.is_open() || c.buffer.size() != 0) return false;
    char byte;
    const auto n = ::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

bool is_stale_error(const error_code& ec) {
    return ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
           ec == net::error::broken_pipe || ec == net::error::connection_aborted;
}

}  // namespace

// The idle connections opened on one io_context, most recently used last.
struct idle_set {
    const net::execution_context* context = nullptr;
    std::vector<std::unique_ptr<connection>> connections;
};

const net::execution_context* context_of(const net::any_io_executor& ex) {
    return &net::query(ex, net::execution::context);
}

struct pool_core : std::enable_shared_from_this<pool_core> {
    explicit pool_core(conf::upstream_config cfg) : config(std::move(cfg)) {}

    const conf::upstream_config config;  // as started: the URL
    // What a reload may change (timeouts, limits); `config` at first
    // (pool::reconfigure). One acquire load per read.
    std::atomic<const conf::upstream_config*> live{&config};
    const conf::upstream_config& settings() const { return *live.load(std::memory_order_acquire); }

    std::mutex mutex;
    std::vector<idle_set> idle;  // one per io_context that opened connections (a few)
    std::size_t idle_count = 0;  // over all sets
    std::size_t open = 0;        // idle + leased + connecting
    // Coroutines waiting for a free slot or idle connection, each resumed on
    // its own executor. Enqueued and woken under `mutex`.
    sync::waiter_queue waiters{sync::real_time()};

    std::atomic<std::uint64_t> connects{0}, connect_failures{0}, reuses{0}, stale_retries{0};

    idle_set& set_for(const net::execution_context* context) {
        for (auto& s : idle) {
            if (s.context == context) return s;
        }
        return idle.emplace_back(idle_set{context, {}});
    }

    // The set of another io_context holding the most idle connections, or
    // nullptr. Called with `mutex` held.
    idle_set* busiest_other_set(const net::execution_context* here) {
        idle_set* best = nullptr;
        for (auto& s : idle) {
            if (s.context != here && !s.connections.empty() &&
                (!best || s.connections.size() > best->connections.size())) {
                best = &s;
            }
        }
        return best;
    }

    // The most recently used usable connection of `set`, dropping the
    // expired and closed ones met on the way. Called with `mutex` held.
    std::unique_ptr<connection> take_idle(idle_set& set, clock::time_point now, bool probe) {
        while (!set.connections.empty()) {
            auto c = std::move(set.connections.back());
            set.connections.pop_back();
            --idle_count;
            if (now - c->idle_since < settings().idle_timeout && c->stream.socket().is_open() &&
                (!probe || looks_alive(*c))) {
                return c;
            }
            --open;  // expired or closed by the upstream: drop it
        }
        return nullptr;
    }

    void release(std::unique_ptr<connection> c, bool reusable) {
        std::unique_ptr<connection> doomed;
        std::lock_guard lock(mutex);
        if (reusable && c->stream.socket().is_open() && c->buffer.size() == 0 &&
            idle_count < settings().max_idle_connections) {
            c->stream.expires_never();
            c->idle_since = clock::now();
            set_for(context_of(c->stream.get_executor())).connections.push_back(std::move(c));
            ++idle_count;
        } else {
            doomed = std::move(c);  // closed by its destructor, after the lock is released
            --open;
        }
        waiters.wake_one();
    }

    std::optional<lease> try_acquire(const net::any_io_executor& ex, bool probe) {
        std::lock_guard lock(mutex);
        if (auto c = take_idle(set_for(context_of(ex)), clock::now(), probe)) {
            ++reuses;
            return lease{shared_from_this(), std::move(c), true};
        }
        return std::nullopt;
    }

    net::awaitable<boost::system::result<lease>> acquire(clock::time_point deadline, bool probe) {
        const auto ex = co_await net::this_coro::executor;
        const auto* here = context_of(ex);
        for (;;) {
            std::optional<sync::waiter_queue::ticket> me;
            std::unique_ptr<connection> doomed;  // closed after the lock is released
            {
                std::unique_lock lock(mutex);
                const auto now = clock::now();
                if (auto c = take_idle(set_for(here), now, probe)) {
                    ++reuses;
                    co_return lease{shared_from_this(), std::move(c), true};
                }
                if (open < settings().max_connections) {
                    ++open;
                } else if (auto* other = busiest_other_set(here)) {
                    // At the limit with idle connections elsewhere: one of
                    // them, the least recently used, gives its slot to a new
                    // connection here (a connection stays with the thread
                    // that opened it; its timers and socket never race).
                    doomed = std::move(other->connections.front());
                    other->connections.erase(other->connections.begin());
                    --idle_count;
                } else {
                    me = waiters.enqueue(ex, deadline);
                }
            }
            doomed.reset();
            if (!me) co_return co_await connect(ex, deadline);

            // Woken: a slot or an idle connection is free; look again.
            if (co_await me->wait() == sync::wake::woken) continue;
            co_return make_error_code(error::pool_exhausted);
        }
    }

    // Opens a connection for a slot already counted in `open`.
    net::awaitable<boost::system::result<lease>> connect(net::any_io_executor ex,
                                                         clock::time_point deadline) {
        auto c = std::make_unique<connection>(std::move(ex));
        tcp::resolver resolver(c->stream.get_executor());
        auto [rec, endpoints] =
            co_await resolver.async_resolve(config.url.host, std::to_string(config.url.port), use_tuple);
        error_code ec = rec;
        if (!ec) {
            const auto left = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                std::min<clock::duration>(settings().connect_timeout, deadline - clock::now()));
            c->stream.expires_after(std::max(left, clock::duration::zero()));
            auto [cec, ep] = co_await c->stream.async_connect(endpoints, use_tuple);
            ec = cec;
        }
        if (ec) {
            ++connect_failures;
            {
                std::lock_guard lock(mutex);
                --open;
                waiters.wake_one();
            }
            co_return make_error_code(ec == beast::error::timeout ? error::connect_timeout : error::refused);
        }
        c->stream.socket().set_option(tcp::no_delay(true));
        // Synchronous writes on it return would_block instead of waiting:
        // forward() writes what the kernel takes at once, then goes async.
        c->stream.socket().non_blocking(true);
        ++connects;
        co_return lease{shared_from_this(), std::move(c), false};
    }
};

lease::lease(std::shared_ptr<pool_core> core, std::unique_ptr<connection> c, bool reused)
    : core_(std::move(core)), conn_(std::move(c)), reused_(reused) {}

lease::lease(lease&&) noexcept = default;

lease& lease::operator=(lease&& other) noexcept {
    if (this != &other) {
        release(false);
        core_ = std::move(other.core_);
        conn_ = std::move(other.conn_);
        reused_ = other.reused_;
    }
    return *this;
}

lease::~lease() {
    release(false);
}

void lease::release(bool reusable) {
    if (core_ && conn_) core_->release(std::move(conn_), reusable);
    core_.reset();
}

pool::pool(conf::upstream_config cfg) : core_(std::make_shared<pool_core>(std::move(cfg))) {}

pool::~pool() = default;

const conf::upstream_config& pool::config() const {
    return core_->settings();
}

void pool::reconfigure(const conf::upstream_config& next) {
    core_->live.store(&next, std::memory_order_release);
}

void pool::note_stale_retry() {
    ++core_->stale_retries;
}

pool_stats pool::stats() const {
    pool_stats s;
    s.connects = core_->connects;
    s.connect_failures = core_->connect_failures;
    s.reuses = core_->reuses;
    s.stale_retries = core_->stale_retries;
    std::lock_guard lock(core_->mutex);
    s.open = core_->open;
    s.idle = core_->idle_count;
    return s;
}

net::awaitable<boost::system::result<lease>> pool::acquire(clock::time_point deadline, bool probe) {
    return core_->acquire(deadline, probe);
}

std::optional<lease> pool::try_acquire(const net::any_io_executor& ex, bool probe) {
    return core_->try_acquire(ex, probe);
}

net::awaitable<boost::system::result<buffered_response>> pool::fetch(request_head req,
                                                                     clock::time_point deadline,
                                                                     std::size_t body_cap) {
    // Beast keeps the request line inside the fields: assign the fields
    // first, then the method and target (the other way round loses them).
    http::request<http::empty_body> msg;
    static_cast<http::fields&>(msg) = std::move(req.headers);
    msg.method(req.method);
    msg.target(req.target);
    msg.version(11);
    strip_hop_by_hop(msg);
    msg.erase(http::field::content_length);
    msg.erase(http::field::expect);
    if (msg.find(http::field::host) == msg.end()) {
        msg.set(http::field::host, core_->config.url.host + ":" + std::to_string(core_->config.url.port));
    }
    msg.keep_alive(true);

    for (int attempt = 0;; ++attempt) {
        auto leased = co_await acquire(deadline);
        if (!leased) co_return leased.error();
        auto& c = leased->conn();

        c.stream.expires_at(deadline);
        auto [wec, wn] = co_await http::async_write(c.stream, msg, use_tuple);
        error_code ec = wec;
        std::optional<http::response_parser<http::string_body>> parser;
        if (!ec) {
            // Skip interim 1xx answers: read heads until a final one.
            do {
                parser.emplace();
                parser->body_limit(body_cap);
                if (req.method == http::verb::head) parser->skip(true);
                auto [hec, hn] = co_await http::async_read_header(c.stream, c.buffer, *parser, use_tuple);
                ec = hec;
            } while (!ec && parser->get().result_int() / 100 == 1);
        }
        if (!ec) {
            auto [bec, bn] = co_await http::async_read(c.stream, c.buffer, *parser, use_tuple);
            ec = bec;
        }
        if (ec) {
            if (attempt == 0 && leased->reused() && is_stale_error(ec)) {
                note_stale_retry();
                continue;  // the failed lease closes its connection
            }
            if (ec == beast::error::timeout) co_return make_error_code(error::response_timeout);
            if (ec == http::error::body_limit) co_return make_error_code(error::body_too_large);
            if (is_stale_error(ec) || ec.category() == net::error::get_system_category())
                co_return make_error_code(error::closed);
            co_return make_error_code(error::bad_response);
        }
        auto& res = parser->get();
        buffered_response out;
        out.status = res.result_int();
        const bool keep = res.keep_alive();
        out.body = std::move(res.body());
        strip_hop_by_hop(res);
        out.headers = std::move(static_cast<http::fields&>(res));
        leased->release(keep && !parser->need_eof());
        co_return out;
    }
}

}  // namespace sidecache::upstream
