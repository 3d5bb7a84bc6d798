#pragma once
// Streams one client request to the legacy backend and its answer back, in
// chunks (Beast's "HTTP relay" example): neither body is ever held whole.
// Included by the proxy session only (it pulls in Beast's HTTP parser).

#include "upstream/pool.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

namespace sidecache::upstream {

// The client half of a forwarded exchange. The request's head has been read
// (and checked) into `request`; its body, if any, is still to be read.
struct client_side {
    boost::beast::tcp_stream& stream;
    boost::beast::flat_buffer& buffer;
    boost::beast::http::request_parser<boost::beast::http::buffer_body>& request;
    std::string_view address;                // client ip, appended to X-Forwarded-For
    std::chrono::milliseconds body_timeout;  // a body read or write stalls: closed
    std::span<char> scratch;                 // relay buffer for one chunk
    bool keep_alive = true;                  // the client connection may serve another request
    // When set and true as the answer starts (the server is draining), the
    // answer says "Connection: close" and the connection ends after it.
    const std::atomic<bool>* closing = nullptr;
    // When set, called with the upstream's final status once it is known and
    // before any byte of the answer reaches the client (the session evicts a
    // verified writer's cache entries there: read-your-writes).
    const std::function<void(unsigned status)>* on_status = nullptr;
};

struct forward_result {
    // Empty on success. An upstream::error when the upstream failed (502/504
    // if nothing was sent yet), else the client side's error (Beast's
    // http::error::body_limit: 413; other parse errors: 400; I/O: gone).
    boost::system::error_code ec;
    bool upstream_fault = false;
    bool response_started = false;  // bytes reached the client: no other answer is possible
    bool keep_alive = false;        // the client connection may serve another request
    unsigned status = 0;            // the upstream's status, once known
    std::uint64_t body_bytes = 0;   // response body bytes relayed
};

// Sends the request to the upstream (via `upstream`, minus hop-by-hop fields,
// plus X-Forwarded-For, X-Forwarded-Proto and Via) and relays the answer.
// The response head must arrive within upstream.response_timeout.
boost::asio::awaitable<forward_result> forward(client_side client, pool& upstream);

}  // namespace sidecache::upstream
