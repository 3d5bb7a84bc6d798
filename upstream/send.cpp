#include "upstream/send.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>

namespace sidecache::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;

error_code send_now(beast::tcp_stream& out, send_buffers buffers, std::size_t& sent) {
    sent = 0;
    if (!out.socket().non_blocking()) return net::error::would_block;
    error_code ec;
    const auto total = net::buffer_size(buffers);
    const bool one_piece =
        buffers.size() == 1 ||
        (buffers.size() == 2 &&
         (buffers[1].size() == 0 ||
          static_cast<const char*>(buffers[0].data()) + buffers[0].size() == buffers[1].data()));
    if (one_piece) {
        // A head, or a head with its body copied after it: send() rather
        // than sendmsg(), with no iovec to fill.
        sent = out.socket().write_some(net::const_buffer(buffers[0].data(), total), ec);
    } else {
        sent = out.socket().write_some(buffers, ec);
    }
    if (ec == net::error::try_again) ec = net::error::would_block;
    if (!ec && sent != total) ec = net::error::would_block;
    return ec;
}

net::awaitable<error_code> send_rest(beast::tcp_stream& out, send_buffers buffers, std::size_t sent,
                                     std::chrono::steady_clock::time_point expiry) {
    beast::buffers_suffix<send_buffers> rest(buffers);
    rest.consume(sent);
    out.expires_at(expiry);
    auto [ec, n] = co_await net::async_write(out, rest, net::as_tuple(net::use_awaitable));
    co_return ec;
}

net::awaitable<error_code> send_all(beast::tcp_stream& out, send_buffers buffers,
                                    std::chrono::steady_clock::time_point expiry) {
    std::size_t sent = 0;
    auto ec = send_now(out, buffers, sent);
    if (ec == net::error::would_block) ec = co_await send_rest(out, buffers, sent, expiry);
    co_return ec;
}

}  // namespace sidecache::upstream
