#pragma once
// One upstream connection as the pool lends it (include only where the
// stream is used: it pulls in Beast's tcp_stream).

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>

namespace sidecache::upstream {

struct connection {
    explicit connection(boost::asio::any_io_executor ex) : stream(std::move(ex)) {
        // Beast reads at most the buffer's free capacity per call: a buffer
        // grown from nothing reads a 4 KiB answer in ~10 recvmsg, this in one.
        buffer.reserve(16 * 1024);
    }

    boost::beast::tcp_stream stream;   // on the io_context that opened it: its timer and socket never race
    boost::beast::flat_buffer buffer;  // bytes read from the upstream, not yet parsed
    std::chrono::steady_clock::time_point idle_since{};
};

}  // namespace sidecache::upstream
