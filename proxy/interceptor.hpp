#pragma once
// The seam where the cache plugs into the proxy. The session offers every
// GET/HEAD request without body to the interceptor after reading its head,
// before forwarding it; the interceptor answers it whole, or declines.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace sidecache::auth {
struct verified_user;
}  // namespace sidecache::auth

namespace sidecache::proxy {

// A request head as read from the client. Valid only until the interceptor's
// coroutine returns: copy what must outlive it.
struct request_view {
    boost::beast::http::verb method;  // get or head
    std::string_view target;          // as sent, "/api/agents?x=1"
    unsigned version;                 // 10 or 11
    const boost::beast::http::fields& headers;
    std::string_view client_address;  // "127.0.0.1"
    std::uint16_t client_port;
    // The session keeps the connection after this answer: false when the
    // client asked to close or the server is draining (the answer must then
    // say "Connection: close").
    bool keep_alive = true;
};

// A complete response (status line, header fields, body; no body for HEAD),
// written as one scatter-gather write of `buffers`. `storage` owns the bytes
// they point to, so a cache hit can share bytes it already holds.
//
// The bytes are written as they are: the session adds no header. A response
// with keep_alive true must therefore frame its body (Content-Length) and the
// session keeps the connection only if the client also asked for it (HTTP/1.1
// without "Connection: close"); an HTTP/1.0 client is closed after the write.
struct response_buffers {
    std::vector<boost::asio::const_buffer> buffers;
    std::shared_ptr<const void> storage;
    bool keep_alive = true;

    // For the access log (log.access_log): the answer's status and body
    // size, how the cache produced it ("hit", "miss", ...: static text),
    // whom it was for, and how long it waited for a fill (none for a hit).
    unsigned status = 0;
    std::uint64_t body_bytes = 0;
    std::string_view cache_result;
    std::shared_ptr<const auth::verified_user> user;
    std::optional<std::chrono::steady_clock::duration> fill_wait;
};

class interceptor {
public:
    virtual ~interceptor() = default;

    // std::nullopt: not mine, the session forwards the request to the
    // upstream. Runs on the session's io thread; may wait (a cache fill). Must
    // not throw for a bad request: answer it (e.g. 401) or decline.
    virtual boost::asio::awaitable<std::optional<response_buffers>> handle(request_view request) = 0;

    // A write (any method but GET/HEAD) about to be forwarded: what to run if
    // the upstream accepts it (2xx), before its answer reaches the client, so
    // that the writer's next GET sees its own write. Empty: nothing (no
    // verified user). Runs on the session's io thread.
    virtual std::function<void()> on_write(const boost::beast::http::fields& headers) {
        (void)headers;
        return {};
    }
};

}  // namespace sidecache::proxy
