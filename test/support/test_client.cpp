#include "test_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

namespace sidecache::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct test_client::impl {
    net::io_context ioc;
    tcp::socket socket{ioc};
    beast::flat_buffer buffer;
    std::chrono::milliseconds receive_timeout;

    // Runs one read started by `start` (given its completion handler) until it
    // completes or the receive timeout passes, then cancels it. A blocking
    // read cannot be bounded: Asio waits in poll() without a timeout once
    // SO_RCVTIMEO expires, so a test whose server never answers would hang
    // until ctest's timeout.
    template <typename Start>
    boost::system::error_code bounded(Start start) {
        boost::system::error_code result;
        bool done = false;
        ioc.restart();
        start([&](boost::system::error_code ec, std::size_t) {
            result = ec;
            done = true;
        });
        ioc.run_for(receive_timeout);
        if (done) return result;
        socket.cancel();
        ioc.restart();
        ioc.run();  // the read completes, aborted
        return net::error::timed_out;
    }
};

test_client::test_client(std::uint16_t port, std::chrono::milliseconds receive_timeout)
    : impl_(std::make_unique<impl>()) {
    impl_->receive_timeout = receive_timeout;
    impl_->socket.connect({net::ip::make_address("127.0.0.1"), port});
}

test_client::~test_client() = default;

void test_client::send(std::string_view bytes) {
    net::write(impl_->socket, net::buffer(bytes));
}

std::optional<client_response> test_client::read_response(bool head) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    parser.header_limit(1024 * 1024);  // tests relay heads past the 8 KiB default
    if (head) parser.skip(true);
    const auto ec = impl_->bounded(
        [&](auto handler) { http::async_read(impl_->socket, impl_->buffer, parser, std::move(handler)); });
    if (ec) return std::nullopt;
    client_response out;
    const auto& msg = parser.get();
    out.status = msg.result_int();
    for (const auto& f : msg) out.headers.emplace_back(f.name_string(), f.value());
    out.body = msg.body();
    out.chunked = parser.chunked();
    out.keep_alive = msg.keep_alive();
    return out;
}

bool test_client::closed_by_peer() {
    char sink[4096];
    for (;;) {
        const auto ec =
            impl_->bounded([&](auto handler) { impl_->socket.async_read_some(net::buffer(sink), std::move(handler)); });
        if (ec == net::error::eof || ec == net::error::connection_reset) return true;
        if (ec) return false;  // timed out: still open
    }
}

int test_client::native_handle() {
    return impl_->socket.native_handle();
}

std::string get_request(std::string_view target, std::string_view extra) {
    std::string out = "GET ";
    out += target;
    out += " HTTP/1.1\r\nHost: sidecache.test\r\n";
    out += extra;
    out += "\r\n";
    return out;
}

}  // namespace sidecache::test
