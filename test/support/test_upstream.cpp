#include "test_upstream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <fmt/core.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

namespace sidecache::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

std::string render(const scripted_response& r) {
    if (r.raw) return *r.raw;
    std::string out =
        fmt::format("HTTP/1.1 {} {}\r\n", r.status,
                    std::string_view(http::obsolete_reason(static_cast<http::status>(r.status))));
    for (const auto& [name, value] : r.headers) out += fmt::format("{}: {}\r\n", name, value);
    const bool bodyless = r.status == 204 || r.status == 304 || r.status / 100 == 1;
    if (r.close) out += "Connection: close\r\n";
    if (r.chunked) {
        out += "Transfer-Encoding: chunked\r\n\r\n";
        for (std::size_t at = 0; at < r.body.size(); at += r.chunk_size) {
            const auto piece = std::string_view(r.body).substr(at, r.chunk_size);
            out += fmt::format("{:x}\r\n", piece.size());
            out += piece;
            out += "\r\n";
        }
        out += "0\r\n\r\n";
        return out;
    }
    if (!r.no_length && !bodyless && !has_header(r.headers, "Content-Length"))
        out += fmt::format("Content-Length: {}\r\n", r.body.size());
    out += "\r\n";
    out += r.body;
    return out;
}
}  // namespace

std::string header_value(const header_list& headers, std::string_view name) {
    for (const auto& [n, v] : headers)
        if (beast::iequals(n, name)) return v;
    return {};
}

bool has_header(const header_list& headers, std::string_view name) {
    for (const auto& [n, v] : headers)
        if (beast::iequals(n, name)) return true;
    return false;
}

struct test_upstream::impl {
    explicit impl(handler h)
        : on_request(std::move(h)), acceptor(ioc, {net::ip::make_address("127.0.0.1"), 0}) {}

    handler on_request;
    net::io_context ioc;
    tcp::acceptor acceptor;
    std::thread thread;

    mutable std::mutex mutex;
    mutable std::condition_variable changed;
    std::size_t accepted = 0;
    std::vector<recorded_request> received;
    std::set<tcp::socket*> idle;  // connections waiting for a request (io thread only)

    net::awaitable<void> serve(tcp::socket socket, std::size_t connection) {
        beast::flat_buffer buffer;
        for (std::size_t nth = 1;; ++nth) {
            http::request_parser<http::string_body> parser;
            parser.body_limit(256 * 1024 * 1024);
            idle.insert(&socket);
            auto [ec, n] = co_await http::async_read(socket, buffer, parser, use_tuple);
            idle.erase(&socket);
            if (ec) co_return;
            const auto& msg = parser.get();
            recorded_request req;
            req.method = std::string(msg.method_string());
            req.target = std::string(msg.target());
            req.version = msg.version();
            for (const auto& f : msg) req.headers.emplace_back(f.name_string(), f.value());
            req.body = msg.body();
            req.chunked = parser.chunked();
            req.connection = connection;
            req.nth_on_connection = nth;
            {
                std::lock_guard lock(mutex);
                received.push_back(req);
            }
            changed.notify_all();
            const auto res = on_request(req);
            if (res.delay.count() > 0) {
                net::steady_timer t(socket.get_executor(), res.delay);
                co_await t.async_wait(use_tuple);
            }
            std::string bytes = render(res);
            if (req.method == "HEAD" && !res.raw) bytes.resize(bytes.find("\r\n\r\n") + 4);
            auto [wec, wn] = co_await net::async_write(socket, net::buffer(bytes), use_tuple);
            if (wec || res.close || res.no_length || !msg.keep_alive() || (res.raw && res.close)) {
                boost::system::error_code ignored;
                socket.shutdown(tcp::socket::shutdown_send, ignored);
                socket.close(ignored);
                co_return;
            }
        }
    }

    net::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
            if (ec) co_return;
            std::size_t connection;
            {
                std::lock_guard lock(mutex);
                connection = ++accepted;
            }
            net::co_spawn(ioc, serve(std::move(socket), connection), net::detached);
        }
    }
};

test_upstream::test_upstream(handler h) : impl_(std::make_unique<impl>(std::move(h))) {
    net::co_spawn(impl_->ioc, impl_->accept_loop(), net::detached);
    impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

test_upstream::~test_upstream() {
    impl_->ioc.stop();
    impl_->thread.join();
}

std::uint16_t test_upstream::port() const {
    return impl_->acceptor.local_endpoint().port();
}

std::size_t test_upstream::accepted() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->accepted;
}

std::size_t test_upstream::requests() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->received.size();
}

std::vector<recorded_request> test_upstream::received() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->received;
}

recorded_request test_upstream::last() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->received.empty() ? recorded_request{} : impl_->received.back();
}

std::size_t test_upstream::close_idle() {
    std::promise<std::size_t> done;
    net::post(impl_->ioc, [&] {
        std::size_t n = 0;
        for (auto* s : impl_->idle) {
            boost::system::error_code ignored;
            s->shutdown(tcp::socket::shutdown_both, ignored);
            ++n;
        }
        done.set_value(n);
    });
    return done.get_future().get();
}

bool test_upstream::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(impl_->mutex);
    return impl_->changed.wait_for(lock, timeout, [&] { return impl_->received.size() >= n; });
}

}  // namespace sidecache::test
