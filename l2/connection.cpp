#include "l2/connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace sidecache::l2 {

namespace net = boost::asio;
using boost::system::result;
using net::awaitable;
using net::ip::tcp;

namespace {
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
}  // namespace

connection::connection(const net::any_io_executor& ex) : socket_(ex) {}

awaitable<result<void>> connection::open(const client_options& opts) {
    close();
    tcp::resolver resolver(socket_.get_executor());
    auto [rec, endpoints] = co_await resolver.async_resolve(opts.host, std::to_string(opts.port), use_tuple);
    if (rec) co_return make_error_code(error::unavailable);
    auto [cec, ep] = co_await net::async_connect(socket_, endpoints, use_tuple);
    if (cec) {
        close();
        co_return make_error_code(error::unavailable);
    }
    boost::system::error_code ignored;  // without Nagle still correct, only slower
    socket_.set_option(tcp::no_delay(true), ignored);
    if (!opts.password.empty()) {
        std::vector<std::string> auth;
        auth.emplace_back("AUTH");
        if (!opts.user.empty()) auth.push_back(opts.user);
        auth.push_back(opts.password);
        if (auto r = co_await setup(auth); !r) co_return r;
    }
    if (opts.db != 0) {
        // A named vector: GCC 12 miscompiles a braced list inside a co_await.
        std::vector<std::string> select{"SELECT", std::to_string(opts.db)};
        if (auto r = co_await setup(select); !r) co_return r;
    }
    co_return result<void>{};
}

// One step of setting a connection up: an error reply closes it.
awaitable<result<void>> connection::setup(const std::vector<std::string>& args) {
    auto r = co_await exchange(format_command(args));
    if (!r) co_return r.error();
    if (r->type == reply::kind::error) {
        close();
        co_return make_error_code(error::server);
    }
    co_return result<void>{};
}

awaitable<result<reply>> connection::exchange(const std::string& request) {
    auto [ec, n] = co_await net::async_write(socket_, net::buffer(request), use_tuple);
    if (ec) {
        close();
        co_return make_error_code(error::unavailable);
    }
    co_return co_await read_reply();
}

awaitable<result<reply>> connection::read_reply() {
    for (;;) {
        auto next = reader_.next();
        if (!next) {
            close();
            co_return next.error();
        }
        if (*next) co_return std::move(**next);
        auto [ec, n] = co_await socket_.async_read_some(net::buffer(buffer_), use_tuple);
        if (ec) {
            close();
            co_return make_error_code(error::unavailable);
        }
        if (auto fed = reader_.feed(buffer_.data(), n); !fed) {
            close();
            co_return fed.error();
        }
    }
}

void connection::close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
    reader_ = resp_reader();
}

}  // namespace sidecache::l2
