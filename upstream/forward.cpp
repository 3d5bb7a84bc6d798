#include "upstream/forward.hpp"

#include "upstream/connection.hpp"
#include "upstream/head_rules.hpp"
#include "upstream/send.hpp"
#include "upstream/streamed_head.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

namespace sidecache::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t head_limit = 64 * 1024;  // an upstream response head
using response_parser = http::response_parser<http::buffer_body>;

bool is_idempotent(http::verb v) {
    switch (v) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::trace:
    case http::verb::put:
    case http::verb::delete_:
        return true;
    default:
        return false;
    }
}

// The upstream closed or reset a connection: on a pooled one, it was stale.
bool is_closed_error(const error_code& ec) {
    return ec == http::error::end_of_stream || ec == http::error::partial_message || ec == net::error::eof ||
           ec == net::error::connection_reset || ec == net::error::broken_pipe ||
           ec == net::error::connection_aborted;
}

error_code upstream_error_for(const error_code& ec) {
    if (ec == beast::error::timeout) return error::response_timeout;
    if (is_closed_error(ec) || ec.category() == net::error::get_system_category()) return error::closed;
    return error::bad_response;
}

std::optional<std::uint64_t> to_std(const boost::optional<std::uint64_t>& v) {
    return v ? std::optional<std::uint64_t>(*v) : std::nullopt;
}

using two_buffers = std::array<net::const_buffer, 2>;

// Writes what Beast's serializer has ready straight to the (non-blocking)
// socket: a body chunk usually goes out in this one call. would_block: the
// caller writes the rest asynchronously; the serializer keeps its place.
template <bool is_request>
error_code write_now(beast::tcp_stream& out, http::serializer<is_request, http::buffer_body>& sr) {
    if (!out.socket().non_blocking()) return net::error::would_block;
    error_code ec;
    http::write(out.socket(), sr, ec);
    if (ec == net::error::try_again) ec = net::error::would_block;
    return ec;
}

// Marks the serializer's head as written without writing it: the head
// went out already, written by the head rules; the serializer only frames
// the body (chunked or not, as the message's fields say).
template <bool is_request>
void skip_head(http::serializer<is_request, http::buffer_body>& sr) {
    sr.split(true);
    error_code ec;
    std::size_t n = 0;
    sr.next(ec, [&](error_code&, const auto& buffers) { n = beast::buffer_bytes(buffers); });
    sr.consume(n);
}

// Relays one message body from `in` to `out` a chunk at a time (Beast's
// "HTTP relay" example); `sr`'s head has been written already (skip_head).
// Returns the error and whether it came from the reading side.
template <bool is_request>
net::awaitable<std::pair<error_code, bool>> relay(beast::tcp_stream& in, beast::flat_buffer& in_buffer,
                                                  http::parser<is_request, http::buffer_body>& parser,
                                                  beast::tcp_stream& out,
                                                  http::serializer<is_request, http::buffer_body>& sr,
                                                  std::span<char> scratch, std::chrono::milliseconds timeout,
                                                  std::uint64_t& bytes) {
    auto& body = parser.get().body();
    do {
        if (!parser.is_done()) {
            body.data = scratch.data();
            body.size = scratch.size();
            in.expires_after(timeout);
            auto [ec, n] = co_await http::async_read(in, in_buffer, parser, use_tuple);
            if (ec && ec != http::error::need_buffer) co_return std::pair{ec, true};
            body.size = scratch.size() - body.size;
            body.data = scratch.data();
            body.more = !parser.is_done();
        } else {
            body.data = nullptr;
            body.size = 0;
            body.more = false;
        }
        bytes += body.size;
        auto ec = write_now(out, sr);
        if (ec == net::error::would_block) {
            out.expires_after(timeout);
            auto [wec, n] = co_await http::async_write(out, sr, use_tuple);
            ec = wec;
        }
        if (ec && ec != http::error::need_buffer) co_return std::pair{ec, false};
    } while (!parser.is_done() || !sr.is_done());
    co_return std::pair{error_code{}, false};
}

// Facts of one forwarded exchange that every stage reads.
struct exchange {
    client_side& client;
    clock::time_point deadline;  // for the upstream's response head
    bool head_request;
    bool has_body;
    bool chunked;
    bool client_http11;
    // The client and the server allow another request: asked as the answer
    // starts (the server may have begun draining since the request came).
    bool keep_alive() const { return client.keep_alive && !(client.closing && client.closing->load()); }
};

// Stage 1a: the request head, in the scratch buffer or, larger, in `large`.
std::string_view forwarded_head(const exchange& x, std::vector<char>& large) {
    const auto& req = x.client.request.get();
    head_writer head{x.client.scratch};
    write_request_head(req, x.client.address, x.chunked, head);
    if (!head.ok()) {
        large.resize(head.size());
        head = head_writer{large};
        write_request_head(req, x.client.address, x.chunked, head);
    }
    return head.bytes();
}

// Stage 1b: the request body, relayed from the client after the head. The
// error's second half: it came from the client side (the upstream
// connection is then dropped, no retry).
net::awaitable<std::pair<error_code, bool>> send_body(const exchange& x, connection& up) {
    auto& client = x.client;
    auto& req = client.request.get();
    if (x.chunked) req.chunked(true);  // the serializer frames the body by the fields
    http::request_serializer<http::buffer_body> sr{req};
    skip_head(sr);
    std::uint64_t sent = 0;
    co_return co_await relay(client.stream, client.buffer, client.request, up.stream, sr, client.scratch,
                             client.body_timeout, sent);
}

// Stage 2: whether the response head's blank line is buffered (Beast's
// parser consumes a head that arrives in pieces piece by piece; the
// streamed copy wants it whole). `scanned`: where to look from next time.
bool head_buffered(const beast::flat_buffer& buffer, std::size_t& scanned, error_code& ec) {
    const auto data = buffer.data();
    const std::string_view bytes(static_cast<const char*>(data.data()), data.size());
    if (bytes.find("\r\n\r\n", scanned) != std::string_view::npos) return true;
    if (bytes.size() >= head_limit) ec = http::error::header_limit;
    scanned = bytes.size() < 3 ? 0 : bytes.size() - 3;
    return false;
}

// The response head as the client gets it, and how its body goes.
struct response_start {
    explicit response_start(std::span<char> scratch) : head(scratch) {}

    head_writer head;
    std::vector<char> large;  // a head larger than the scratch buffer
    response_framing framing;
    unsigned status = 0;
    std::uint64_t body_size = 0;  // of a sized body
    bool upstream_keep_alive = false;
    std::optional<response_parser> parser;  // set when Beast's parser read the head: it reads the body too
};

// Stage 3a: the common answer (no interim 1xx, no body or a Content-Length
// body), copied to the client's head as it is parsed from the buffered
// bytes, which are consumed only if it is that answer. false: it is not (or
// `ec`), reparse_head() reads it from the same bytes.
bool copy_head(const exchange& x, connection& up, response_start& r, error_code& ec) {
    streamed_head streamed(r.head);
    streamed.header_limit(head_limit);
    streamed.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (x.head_request) streamed.skip(true);
    const auto head_bytes = streamed.put(up.buffer.data(), ec);
    if (ec == http::error::need_more) ec = {};  // not expected: Beast's parser reads it
    if (ec || !streamed.is_header_done() || !streamed.simple()) return false;
    r.status = streamed.status();
    r.framing = frame_response(x.head_request, r.status, streamed.chunked(),
                               to_std(streamed.content_length()), x.client_http11, x.keep_alive());
    if (!r.framing.bodyless && !r.framing.sized) return false;
    end_response_head(r.framing, r.head);
    if (!r.head.ok()) return false;
    r.body_size = r.framing.sized ? *streamed.content_length() : 0;
    r.upstream_keep_alive = streamed.keep_alive();
    up.buffer.consume(head_bytes);
    return true;
}

// Stage 3b: any other answer, parsed by Beast's parser, which builds the
// fields; interim 1xx answers are skipped. The head is written from the fields.
net::awaitable<error_code> reparse_head(const exchange& x, connection& up, response_start& r) {
    for (;;) {
        r.parser.emplace();
        r.parser->body_limit(std::numeric_limits<std::uint64_t>::max());
        r.parser->header_limit(head_limit);
        if (x.head_request) r.parser->skip(true);
        up.stream.expires_at(x.deadline);
        auto [ec, n] = co_await http::async_read_header(up.stream, up.buffer, *r.parser, use_tuple);
        if (ec) co_return ec;
        const auto status = r.parser->get().result_int();
        if (!valid_status(status)) co_return http::error::bad_status;  // a bad upstream answer: 502
        if (status / 100 != 1 || status == 101) break;
    }
    auto& res = r.parser->get();
    r.status = res.result_int();
    r.upstream_keep_alive = r.parser->keep_alive();
    r.framing = frame_response(x.head_request, r.status, r.parser->chunked(),
                               to_std(r.parser->content_length()), x.client_http11, x.keep_alive());
    r.body_size = r.framing.sized ? *r.parser->content_length() : 0;
    if (connection_names_fields(res)) strip_hop_by_hop(res);
    r.head = head_writer{x.client.scratch};  // over what the streamed copy may have left
    write_response_head(res, r.framing, r.head);
    if (!r.head.ok()) {
        r.large.resize(r.head.size());
        r.head = head_writer{r.large};
        write_response_head(res, r.framing, r.head);
    }
    co_return error_code{};
}

// Stage 4a: a bodyless or Content-Length answer: the head plus the body
// bytes already read with it in one write, then the rest of the body copied
// as it arrives. The upstream connection goes back to the pool as soon as
// the answer is read whole, before its last bytes reach the client: a
// client that sends its next request at once finds it idle. Nothing sent
// after that points into the connection's buffer.
struct counted_relay {
    two_buffers first;            // the head and the body bytes read with it
    std::size_t sent = 0;         // of `first`
    std::uint64_t remaining = 0;  // body bytes not in `first`
    bool returned = false;        // the lease is given back: the connection is not ours any more
    bool done = false;            // all of it written: nothing to wait for
};

// What can be done without waiting: the usual small answer, read whole with
// its head, goes out in this one call (no coroutine frame).
counted_relay start_counted(const exchange& x, lease& leased, const response_start& r, forward_result& out) {
    auto& up = leased.conn();
    counted_relay c;
    c.remaining = r.body_size;
    const auto first = static_cast<std::size_t>(std::min<std::uint64_t>(c.remaining, up.buffer.size()));
    net::const_buffer body{up.buffer.data().data(), first};
    const auto room = r.head.room();
    if (first == c.remaining && first <= room.size()) {
        // All of it is here: copied after the head.
        if (first != 0) std::memcpy(room.data(), body.data(), first);
        body = net::const_buffer{room.data(), first};
        up.buffer.consume(first);
        leased.release(r.upstream_keep_alive);
        c.returned = true;
    }
    c.first = {net::buffer(r.head.bytes()), body};
    c.remaining -= first;
    out.response_started = true;
    out.body_bytes += first;
    const auto ec = send_now(x.client.stream, c.first, c.sent);
    if (ec && ec != net::error::would_block) {
        out.ec = ec;  // the client went away
        c.done = true;
    } else if (!ec && c.remaining == 0) {
        if (!c.returned) up.buffer.consume(first);
        leased.release(r.upstream_keep_alive);  // no-op if released above
        out.keep_alive = r.framing.keep_alive;
        c.done = true;
    }
    return c;
}

// The rest: what the client socket did not take at once, then the body
// bytes as they arrive.
net::awaitable<void> finish_counted(const exchange& x, lease& leased, const response_start& r,
                                    counted_relay& c, forward_result& out) {
    auto& client = x.client;
    auto& up = leased.conn();
    error_code ec;
    if (c.sent != net::buffer_size(c.first)) {
        ec = co_await send_rest(client.stream, c.first, c.sent, clock::now() + client.body_timeout);
    }
    if (ec) {
        out.ec = ec;  // the client went away
        co_return;
    }
    if (!c.returned) up.buffer.consume(c.first[1].size());
    while (c.remaining > 0) {
        const auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(c.remaining, client.scratch.size()));
        up.stream.expires_after(client.body_timeout);
        auto [rec, n] =
            co_await up.stream.async_read_some(net::buffer(client.scratch.data(), want), use_tuple);
        if (rec) {
            out.ec = upstream_error_for(rec);
            out.upstream_fault = true;
            co_return;
        }
        c.remaining -= n;
        out.body_bytes += n;
        if (c.remaining == 0) leased.release(r.upstream_keep_alive);  // the last chunk is in scratch
        const two_buffers chunk{net::buffer(client.scratch.data(), n), net::const_buffer{}};
        std::size_t sent = 0;
        ec = send_now(client.stream, chunk, sent);
        if (ec == net::error::would_block) {
            ec = co_await send_rest(client.stream, chunk, sent, clock::now() + client.body_timeout);
        }
        if (ec) {
            out.ec = ec;
            co_return;
        }
    }
    // Read to its end: reusable if the upstream allows it (the pool drops a
    // connection with unasked bytes buffered).
    leased.release(r.upstream_keep_alive);  // no-op if released above
    out.keep_alive = r.framing.keep_alive;
}

// Stage 4b: a chunked or until-EOF body (Beast's parser read the head):
// the head, then the body relayed a chunk at a time, re-chunked for an
// HTTP/1.1 client.
net::awaitable<void> relay_framed(const exchange& x, lease& leased, response_start& r, forward_result& out) {
    auto& client = x.client;
    auto& up = leased.conn();
    out.response_started = true;
    const two_buffers head{net::buffer(r.head.bytes()), net::const_buffer{}};
    auto ec = co_await send_all(client.stream, head, clock::now() + client.body_timeout);
    if (ec) {
        out.ec = ec;  // the client went away
        co_return;
    }
    auto& res = r.parser->get();
    res.chunked(r.framing.chunked);  // the serializer frames the body by the fields
    http::response_serializer<http::buffer_body> sr{res};
    skip_head(sr);
    auto [rec, from_upstream] = co_await relay(up.stream, up.buffer, *r.parser, client.stream, sr,
                                               client.scratch, client.body_timeout, out.body_bytes);
    if (rec) {
        out.ec = from_upstream ? upstream_error_for(rec) : rec;
        out.upstream_fault = from_upstream;
        co_return;
    }
    leased.release(r.upstream_keep_alive && !r.framing.until_eof && r.parser->is_done());
    out.keep_alive = r.framing.keep_alive;
}

// Answers "Expect: 100-continue" here: the upstream gets no Expect.
net::awaitable<error_code> continue_100(client_side& client) {
    static constexpr std::string_view answer = "HTTP/1.1 100 Continue\r\n\r\n";
    client.stream.expires_after(client.body_timeout);
    auto [ec, n] = co_await net::async_write(client.stream, net::buffer(answer), use_tuple);
    co_return ec;
}

// Waits for an upstream connection when none is idle (within `deadline`).
net::awaitable<std::optional<lease>> wait_for_lease(pool& upstream, clock::time_point deadline, bool probe,
                                                    forward_result& out) {
    auto acquired = co_await upstream.acquire(deadline, probe);
    if (acquired) co_return std::move(*acquired);
    out.ec = acquired.error();
    out.upstream_fault = true;
    co_return std::nullopt;
}

}  // namespace

net::awaitable<forward_result> forward(client_side client, pool& upstream) {
    forward_result out;
    auto& req = client.request.get();
    const bool has_body = !client.request.is_done();
    const exchange x{client,
                     clock::now() + upstream.config().response_timeout,
                     req.method() == http::verb::head,
                     has_body,
                     client.request.chunked(),
                     req.version() >= 11};
    if (has_body && beast::iequals(req[http::field::expect], "100-continue")) {
        out.ec = co_await continue_100(client);
        if (out.ec) co_return out;
    }
    if (connection_names_fields(req)) strip_hop_by_hop(req);  // fields write_request_head cannot tell

    // A stale pooled connection costs such a request one retry (below), so
    // the pool need not peek at it first; a retry does not gamble twice.
    const bool retriable = !has_body && is_idempotent(req.method());
    const auto executor = co_await net::this_coro::executor;
    for (int attempt = 0;; ++attempt) {
        const bool probe = attempt > 0 || !retriable;
        auto leased = upstream.try_acquire(executor, probe);
        if (!leased) leased = co_await wait_for_lease(upstream, x.deadline, probe, out);
        if (!leased) co_return out;
        auto& up = leased->conn();

        // The request. Only what has to wait costs a coroutine frame.
        std::vector<char> large;
        const two_buffers request{net::buffer(forwarded_head(x, large)), net::const_buffer{}};
        std::size_t sent = 0;
        auto ec = send_now(up.stream, request, sent);
        if (ec == net::error::would_block) ec = co_await send_rest(up.stream, request, sent, x.deadline);
        bool from_client = false;
        if (!ec && has_body) {
            const auto sent_body = co_await send_body(x, up);
            ec = sent_body.first;
            from_client = sent_body.second;
        }
        if (ec && from_client) {
            out.ec = ec;  // body_limit, bad chunk, client gone: the upstream connection is dropped
            co_return out;
        }
        const bool write_failed = bool(ec);

        // The response head: copied as parsed, or parsed again.
        for (std::size_t scanned = 0; !ec && !head_buffered(up.buffer, scanned, ec);) {
            up.stream.expires_at(x.deadline);
            auto [rec, n] = co_await up.stream.async_read_some(
                up.buffer.prepare(beast::read_size(up.buffer, head_limit)), use_tuple);
            ec = rec;
            if (!ec) up.buffer.commit(n);
        }
        response_start r{client.scratch};
        if (!ec && !copy_head(x, up, r, ec) && !ec) ec = co_await reparse_head(x, up, r);
        if (ec) {
            if (attempt == 0 && leased->reused() && !has_body && is_closed_error(ec) &&
                (is_idempotent(req.method()) || write_failed)) {
                upstream.note_stale_retry();
                continue;  // the failed lease closes its connection
            }
            out.ec = upstream_error_for(ec);
            out.upstream_fault = true;
            co_return out;
        }

        // The answer. Its head is not written yet: on_status runs first.
        out.status = r.status;
        if (client.on_status) (*client.on_status)(r.status);
        if (!r.framing.bodyless && !r.framing.sized) {
            co_await relay_framed(x, *leased, r, out);
        } else {
            auto counted = start_counted(x, *leased, r, out);
            if (!counted.done) co_await finish_counted(x, *leased, r, counted, out);
        }
        co_return out;
    }
}

}  // namespace sidecache::upstream
