#include "external/http.hpp"

#include "sync/waiter_queue.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <mutex>
#include <vector>

namespace sidecache::external {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using net::experimental::awaitable_operators::operator||;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
// An idle connection older than this is closed rather than reused: Node's
// default keep-alive timeout is 5 s, and a reuse racing the server's close
// costs a reconnect.
constexpr std::chrono::seconds idle_max{4};
constexpr std::size_t body_limit = 1024 * 1024;

struct connection {
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<ssl::stream<beast::tcp_stream>> tls;
    beast::flat_buffer buffer;
    http_client::clock::time_point idle_since{};

    beast::tcp_stream& lowest() { return tls ? tls->next_layer() : *plain; }
};

bool is_timeout(const boost::system::error_code& ec) {
    return ec == beast::error::timeout || ec == net::error::timed_out;
}

http_answer failed(try_outcome outcome) {
    http_answer a;
    a.outcome = outcome;
    return a;
}

}  // namespace

struct http_client::impl {
    conf::base_url url;
    std::string port_text;
    std::string host_header;
    std::string api_key;
    std::size_t max_connections;
    ssl::context tls_context{ssl::context::tls_client};
    bool tls = false;
    bool verify = true;

    mutable std::mutex mutex;
    std::vector<std::unique_ptr<connection>> idle;  // newest last
    std::size_t open = 0;                           // connections existing or being made
    // Coroutines waiting for a connection, each resumed on its own
    // executor. Enqueued and woken under `mutex`.
    sync::waiter_queue waiters{sync::real_time()};

    void release(std::unique_ptr<connection> c, bool reusable) {
        std::unique_ptr<connection> closing;  // closed outside the lock
        std::lock_guard lock(mutex);
        if (c && reusable) {
            c->idle_since = clock::now();
            idle.push_back(std::move(c));
        } else {
            closing = std::move(c);
            --open;
        }
        waiters.wake_one();  // the longest waiter looks at the pool again
    }

    // An idle connection opened on the caller's io_context, or a null one
    // with a slot reserved to make one; false when `until` passes first. A
    // connection stays on the io_context (thread) that opened it, so its
    // timers and socket never race: at max_connections, an idle connection
    // of another io_context is closed to give its slot.
    net::awaitable<std::pair<std::unique_ptr<connection>, bool>> acquire(clock::time_point until) {
        const auto ex = co_await net::this_coro::executor;
        const auto* here = &net::query(ex, net::execution::context);
        for (;;) {
            sync::waiter_queue::ticket wait;
            std::vector<std::unique_ptr<connection>> expired;
            {
                std::lock_guard lock(mutex);
                const auto now = clock::now();
                while (!idle.empty() && now - idle.front()->idle_since >= idle_max) {
                    expired.push_back(std::move(idle.front()));
                    idle.erase(idle.begin());
                    --open;
                }
                for (auto it = idle.rbegin(); it != idle.rend(); ++it) {
                    if (&net::query((*it)->lowest().get_executor(), net::execution::context) != here)
                        continue;
                    auto c = std::move(*it);
                    idle.erase(std::next(it).base());
                    co_return std::pair{std::move(c), true};
                }
                if (open < max_connections) {
                    ++open;
                    co_return std::pair{std::unique_ptr<connection>{}, true};
                }
                if (!idle.empty()) {
                    expired.push_back(std::move(idle.front()));  // its slot is ours
                    idle.erase(idle.begin());
                    co_return std::pair{std::unique_ptr<connection>{}, true};
                }
                wait = waiters.enqueue(ex, until);
            }
            expired.clear();
            // A wake and the deadline never both count: woken, it looks again.
            if (co_await wait.wait() != sync::wake::woken)
                co_return std::pair{std::unique_ptr<connection>{}, false};
        }
    }

    // A new connection (resolved, connected, TLS handshaken) or the outcome.
    // On the caller's io_context (see acquire()).
    net::awaitable<std::pair<std::unique_ptr<connection>, try_outcome>> connect(clock::time_point until) {
        const auto executor = co_await net::this_coro::executor;
        tcp::resolver resolver(executor);
        net::steady_timer timer(executor);
        timer.expires_at(until);
        auto resolved =
            co_await (resolver.async_resolve(url.host, port_text, use_tuple) || timer.async_wait(use_tuple));
        if (resolved.index() == 1) co_return std::pair{nullptr, try_outcome::timeout};
        auto [rec, endpoints] = std::get<0>(resolved);
        if (rec) co_return std::pair{nullptr, try_outcome::connect_error};

        auto c = std::make_unique<connection>();
        if (tls) {
            c->tls = std::make_unique<ssl::stream<beast::tcp_stream>>(executor, tls_context);
            // SNI, and the certificate must name the host.
            if (!SSL_set_tlsext_host_name(c->tls->native_handle(), url.host.c_str()))
                co_return std::pair{nullptr, try_outcome::connect_error};
            if (verify) c->tls->set_verify_callback(ssl::host_name_verification(url.host));
        } else {
            c->plain = std::make_unique<beast::tcp_stream>(executor);
        }
        c->lowest().expires_at(until);
        auto [cec, ep] = co_await c->lowest().async_connect(endpoints, use_tuple);
        if (cec)
            co_return std::pair{nullptr, is_timeout(cec) ? try_outcome::timeout : try_outcome::connect_error};
        boost::system::error_code ignored;
        c->lowest().socket().set_option(tcp::no_delay(true), ignored);
        if (tls) {
            auto [hec] = co_await c->tls->async_handshake(ssl::stream_base::client, use_tuple);
            if (hec)
                co_return std::pair{nullptr,
                                    is_timeout(hec) ? try_outcome::timeout : try_outcome::connect_error};
        }
        co_return std::pair{std::move(c), try_outcome::ok};
    }

    struct exchange_result {
        boost::system::error_code ec;
        bool got_some = false;  // any byte of the response arrived
        http_answer answer;
        bool keep_alive = false;
    };

    template <class Stream>
    net::awaitable<exchange_result> exchange(Stream& stream, connection& c, const std::string& target) {
        exchange_result out;
        http::request<http::empty_body> req{http::verb::get, url.path + target, 11};
        req.set(http::field::host, host_header);
        req.set(http::field::user_agent, "sidecache");
        req.set(http::field::accept, "application/json");
        if (!api_key.empty()) req.set("xi-api-key", api_key);
        req.keep_alive(true);
        auto [wec, wn] = co_await http::async_write(stream, req, use_tuple);
        if (wec) {
            out.ec = wec;
            co_return out;
        }
        http::response_parser<http::string_body> parser;
        parser.body_limit(body_limit);
        auto [rec, rn] = co_await http::async_read(stream, c.buffer, parser, use_tuple);
        out.got_some = parser.got_some();
        if (rec) {
            out.ec = rec;
            co_return out;
        }
        auto& res = parser.get();
        out.answer.status = res.result_int();
        out.answer.outcome = outcome_of_status(out.answer.status);
        if (out.answer.outcome == try_outcome::rate_limited) {
            if (auto it = res.find(http::field::retry_after); it != res.end())
                out.answer.retry_after = parse_retry_after(it->value());
        }
        out.keep_alive = res.keep_alive();
        out.answer.body = std::move(res.body());
        co_return out;
    }

    net::awaitable<http_answer> get(std::string target, clock::time_point until) {
        for (int round = 0;; ++round) {
            auto [c, ok] = co_await acquire(until);
            if (!ok) co_return failed(try_outcome::timeout);
            const bool reused = c != nullptr;
            if (!c) {
                auto [made, outcome] = co_await connect(until);
                if (!made) {
                    release(nullptr, false);
                    co_return failed(outcome);
                }
                c = std::move(made);
            }
            c->lowest().expires_at(until);
            // Not `c->tls ? co_await a : co_await b`: GCC 12 destroys the
            // result of a co_await inside ?: twice (a double free).
            exchange_result r;
            if (c->tls)
                r = co_await exchange(*c->tls, *c, target);
            else
                r = co_await exchange(*c->plain, *c, target);
            if (r.ec) {
                release(std::move(c), false);
                // A kept-alive connection the server had closed: nothing came
                // back. Once, on a fresh connection, within the same `until`.
                if (reused && round == 0 && !r.got_some && !is_timeout(r.ec) && clock::now() < until)
                    continue;
                co_return failed(is_timeout(r.ec) ? try_outcome::timeout : try_outcome::transport_error);
            }
            c->lowest().expires_never();
            release(std::move(c), r.keep_alive);
            co_return std::move(r.answer);
        }
    }
};

http_client::http_client(const conf::external_config& config) : impl_(std::make_shared<impl>()) {
    impl_->url = config.url;
    impl_->port_text = std::to_string(config.url.port);
    impl_->tls = config.url.scheme == "https";
    impl_->verify = config.verify_tls;
    const bool default_port =
        (impl_->tls && config.url.port == 443) || (!impl_->tls && config.url.port == 80);
    impl_->host_header = default_port ? config.url.host : config.url.host + ":" + impl_->port_text;
    impl_->api_key = config.api_key;
    impl_->max_connections = std::max<std::size_t>(1, config.max_connections);
    if (impl_->tls) {
        impl_->tls_context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                       ssl::context::no_tlsv1_1);
        if (impl_->verify) {
            impl_->tls_context.set_default_verify_paths();
            impl_->tls_context.set_verify_mode(ssl::verify_peer);
        } else {
            impl_->tls_context.set_verify_mode(ssl::verify_none);
        }
    }
}

http_client::~http_client() {
    close_idle();
}

net::awaitable<http_answer> http_client::get(std::string target, clock::time_point until) {
    auto self = impl_;  // keeps the pool alive for this coroutine
    co_return co_await self->get(std::move(target), until);
}

std::size_t http_client::open_connections() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->open;
}

std::size_t http_client::idle_connections() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->idle.size();
}

void http_client::close_idle() {
    std::vector<std::unique_ptr<connection>> closing;
    std::lock_guard lock(impl_->mutex);
    impl_->open -= impl_->idle.size();
    closing.swap(impl_->idle);
}

}  // namespace sidecache::external
