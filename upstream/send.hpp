#pragma once
// Writes to a non-blocking socket (session and pool set it): what the
// kernel takes at once with no timer, no operation, no suspension and no
// coroutine frame, then the rest asynchronously. Used for every answer the
// proxy writes whole or in relayed pieces (forward.cpp, proxy/session.cpp).

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <cstddef>
#include <span>

namespace sidecache::upstream {

using send_buffers = std::span<const boost::asio::const_buffer>;

// Writes what the socket takes at once; `sent` counts it. would_block: the
// rest is for send_rest() (also when the socket is blocking: nothing went).
// Buffers that are one piece of memory go out with send(), not sendmsg().
boost::system::error_code send_now(boost::beast::tcp_stream& out, send_buffers buffers, std::size_t& sent);

// Writes `buffers` past their first `sent` bytes, with `expiry` as the
// stream's deadline. `buffers` (the span's elements) must outlive the call.
boost::asio::awaitable<boost::system::error_code> send_rest(boost::beast::tcp_stream& out,
                                                            send_buffers buffers, std::size_t sent,
                                                            std::chrono::steady_clock::time_point expiry);

// send_now(), then send_rest() if the socket was full: where a coroutine
// frame does not matter. The hot paths (a forwarded request, a cache hit)
// call the two themselves, so that an answer the socket takes costs none.
boost::asio::awaitable<boost::system::error_code> send_all(boost::beast::tcp_stream& out,
                                                           send_buffers buffers,
                                                           std::chrono::steady_clock::time_point expiry);

}  // namespace sidecache::upstream
