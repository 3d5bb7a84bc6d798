#include "upstream/forward.hpp"

#include "upstream/connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <charconv>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sidecache::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

bool is_idempotent(http::verb v) {
    switch (v) {
        case http::verb::get:
        case http::verb::head:
        case http::verb::options:
        case http::verb::trace:
        case http::verb::put:
        case http::verb::delete_: return true;
        default: return false;
    }
}

// The upstream closed or reset a connection: on a pooled one, it was stale.
bool is_closed_error(const error_code& ec) {
    return ec == http::error::end_of_stream || ec == http::error::partial_message ||
           ec == net::error::eof || ec == net::error::connection_reset ||
           ec == net::error::broken_pipe || ec == net::error::connection_aborted;
}

error_code upstream_error_for(const error_code& ec) {
    if (ec == beast::error::timeout) return error::response_timeout;
    if (is_closed_error(ec) || ec.category() == net::error::get_system_category())
        return error::closed;
    return error::bad_response;
}

// Writes what `sr` has ready straight to `out`'s socket if the socket is
// non-blocking (session and pool set it): a head and a body chunk usually go
// out in this one call, with no timer, no operation and no suspension.
// would_block: the kernel took what it could, the caller writes the rest
// asynchronously. Beast's serializer keeps its place either way.
template <bool is_request>
error_code write_now(beast::tcp_stream& out, http::serializer<is_request, http::buffer_body>& sr) {
    if (!out.socket().non_blocking()) return net::error::would_block;
    error_code ec;
    http::write(out.socket(), sr, ec);
    if (ec == net::error::try_again) ec = net::error::would_block;
    return ec;
}

// A message head as Beast's serializer writes it (start line, fields in
// order, blank line), copied into `out`: one buffer, no serializer state, no
// buffers_cat_view walk. `ok` false: it did not fit, use the serializer.
struct head_writer {
    std::span<char> out;
    std::size_t size = 0;
    bool ok = true;

    void put(std::string_view s) {
        if (s.size() > out.size() - size) {
            ok = false;
            return;
        }
        if (!s.empty()) std::memcpy(out.data() + size, s.data(), s.size());
        size += s.size();
    }
    void fields(const http::fields& f) {
        for (const auto& field : f) {
            put(field.name_string());
            put(": ");
            put(field.value());
            put("\r\n");
        }
        put("\r\n");
    }
    net::const_buffer buffer() const { return {out.data(), size}; }
};

// Hop-by-hop fields that are known by name (RFC 9110 §7.6.1), Connection
// aside: it names the others.
bool is_hop_by_hop(http::field f) {
    switch (f) {
        case http::field::keep_alive:
        case http::field::proxy_connection:
        case http::field::te:
        case http::field::trailer:
        case http::field::transfer_encoding:
        case http::field::upgrade:
        case http::field::proxy_authenticate:
        case http::field::proxy_authorization: return true;
        default: return false;
    }
}

// Whether a Connection value names a field (anything but close and
// keep-alive, which name none): that field is hop-by-hop too.
bool names_fields(std::string_view connection_value) {
    for (auto token : http::token_list{connection_value}) {
        if (!beast::iequals(token, "close") && !beast::iequals(token, "keep-alive")) return true;
    }
    return false;
}

bool connection_names_fields(const http::fields& f) {
    const auto [first, last] = f.equal_range(http::field::connection);
    for (auto it = first; it != last; ++it) {
        if (names_fields(it->value())) return true;
    }
    return false;
}

// The forwarded request head: the client's fields minus hop-by-hop ones and
// Expect, then X-Forwarded-For and Via with our hop appended to what the
// client sent (several fields of one name joined by ", "), and
// X-Forwarded-Proto, at the end in that order, as append_field/set would
// leave them, without changing `req`. Fields named by Connection are not
// known here: strip_hop_by_hop() first when there are any.
void write_head(const http::request_header<>& req, std::string_view client_address, head_writer& w) {
    w.put(req.method_string());
    w.put(" ");
    w.put(req.target());
    w.put(" HTTP/1.1\r\n");
    const auto is = [](const http::fields::value_type& f, std::string_view name) {
        return beast::iequals(f.name_string(), name);  // unequal lengths: no character compared
    };
    for (const auto& field : req) {
        const auto name = field.name();
        if (name == http::field::via || name == http::field::connection || name == http::field::expect ||
            is_hop_by_hop(name) || is(field, "X-Forwarded-For") || is(field, "X-Forwarded-Proto"))
            continue;
        w.put(field.name_string());
        w.put(": ");
        w.put(field.value());
        w.put("\r\n");
    }
    const auto joined = [&](std::string_view name, std::string_view ours, auto match) {
        w.put(name);
        w.put(": ");
        for (const auto& field : req) {
            if (!match(field)) continue;
            w.put(field.value());
            w.put(", ");
        }
        w.put(ours);
        w.put("\r\n");
    };
    joined("X-Forwarded-For", client_address, [&](const auto& f) { return is(f, "X-Forwarded-For"); });
    w.put("X-Forwarded-Proto: http\r\n");
    joined("Via", "1.1 sidecache", [](const auto& f) { return f.name() == http::field::via; });
    w.put("\r\n");
}

void write_head(const http::response_header<>& res, head_writer& w) {
    char status[16];
    const auto end = std::to_chars(status, status + sizeof status, res.result_int()).ptr;
    w.put("HTTP/1.1 ");
    w.put({status, static_cast<std::size_t>(end - status)});
    w.put(" ");
    w.put(res.reason());
    w.put("\r\n");
    w.fields(res);
}

// The upstream's response head copied into the client's head as Beast's
// parser meets it: the status line, then the fields as the upstream sent
// them minus hop-by-hop ones, with no http::fields built (no allocation per
// field, no tree, no second pass). The caller ends the head. What it does
// not handle (simple() false: an interim 1xx, a Connection naming other
// fields, a head too large for the buffer) is parsed again by an
// http::parser from the same, unconsumed bytes.
class streamed_response_head final : public http::basic_parser<false> {
public:
    explicit streamed_response_head(head_writer& out) : out_(out) {}

    unsigned status() const { return status_; }
    bool simple() const { return simple_ && out_.ok && status_ / 100 != 1; }

private:
    void on_request_impl(http::verb, beast::string_view, beast::string_view, int, error_code&) override {}

    void on_response_impl(int code, beast::string_view reason, int, error_code&) override {
        status_ = static_cast<unsigned>(code);
        char digits[16];
        const auto end = std::to_chars(digits, digits + sizeof digits, code).ptr;
        out_.put("HTTP/1.1 ");
        out_.put({digits, static_cast<std::size_t>(end - digits)});
        out_.put(" ");
        out_.put(reason);
        out_.put("\r\n");
    }

    void on_field_impl(http::field name, beast::string_view name_string, beast::string_view value,
                       error_code&) override {
        if (is_hop_by_hop(name)) return;
        if (name == http::field::connection) {
            simple_ = simple_ && !names_fields(value);
            return;
        }
        out_.put(name_string);
        out_.put(": ");
        out_.put(value);
        out_.put("\r\n");
    }

    void on_header_impl(error_code&) override {}
    void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
    std::size_t on_body_impl(beast::string_view body, error_code&) override { return body.size(); }
    void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, error_code&) override {
        return body.size();
    }
    void on_finish_impl(error_code&) override {}

    head_writer& out_;
    unsigned status_ = 0;
    bool simple_ = true;
};

using two_buffers = std::array<net::const_buffer, 2>;

// Writes what the (non-blocking) socket of `out` takes at once; `sent`
// counts it. would_block: the rest is for send_rest(). No coroutine, so the
// usual small write costs no frame.
error_code send_now(beast::tcp_stream& out, const two_buffers& buffers, std::size_t& sent) {
    sent = 0;
    if (!out.socket().non_blocking()) return net::error::would_block;
    error_code ec;
    const auto* first_end = static_cast<const char*>(buffers[0].data()) + buffers[0].size();
    if (buffers[1].size() == 0 || first_end == buffers[1].data()) {
        // One piece of memory (a head, or a head with its body copied after
        // it): send() rather than sendmsg(), with no iovec to copy in.
        sent = out.socket().write_some(net::const_buffer(buffers[0].data(), net::buffer_size(buffers)), ec);
    } else {
        sent = out.socket().write_some(buffers, ec);
    }
    if (ec == net::error::try_again) ec = net::error::would_block;
    if (!ec && sent != net::buffer_size(buffers)) ec = net::error::would_block;
    return ec;
}

// Writes `buffers` past their first `sent` bytes, with `expiry` as the
// stream's deadline.
net::awaitable<error_code> send_rest(beast::tcp_stream& out, two_buffers buffers, std::size_t sent,
                                     clock::time_point expiry) {
    beast::buffers_suffix<two_buffers> rest(buffers);
    rest.consume(sent);
    out.expires_at(expiry);
    auto [ec, n] = co_await net::async_write(out, rest, use_tuple);
    co_return ec;
}

void append_field(http::fields& f, std::string_view name, std::string_view value) {
    const auto it = f.find(name);
    if (it == f.end()) {
        f.set(name, value);
        return;
    }
    std::string joined(it->value());
    joined += ", ";
    joined += value;
    f.set(name, joined);
}

// Relays one message body from `in` to `out` a chunk at a time (Beast's
// "HTTP relay" example); the serializer writes the head with the first chunk.
// Returns the error and whether it came from the reading side.
template <bool is_request>
net::awaitable<std::pair<error_code, bool>> relay(beast::tcp_stream& in, beast::flat_buffer& in_buffer,
                                                  http::parser<is_request, http::buffer_body>& parser,
                                                  beast::tcp_stream& out,
                                                  http::serializer<is_request, http::buffer_body>& sr,
                                                  std::span<char> scratch,
                                                  std::chrono::milliseconds timeout,
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

}  // namespace

void strip_hop_by_hop(http::fields& fields) {
    // The field names listed by Connection (usually none but keep-alive or
    // close, which name no other field).
    std::vector<std::string_view> named;
    for (const auto& f : fields) {
        if (f.name() != http::field::connection) continue;
        for (auto token : http::token_list{f.value()}) named.push_back(token);
    }
    // One pass, comparing the known names as enums. `named` views point into
    // the Connection values, so those go last.
    for (auto it = fields.begin(); it != fields.end();) {
        bool hop = is_hop_by_hop(it->name());
        if (!hop && it->name() != http::field::connection) {
            for (auto name : named) hop = hop || beast::iequals(name, it->name_string());
        }
        it = hop ? fields.erase(it) : std::next(it);
    }
    fields.erase(http::field::connection);
}

net::awaitable<forward_result> forward(client_side client, pool& upstream) {
    forward_result out;
    auto& parser = client.request;
    auto& req = parser.get();
    const bool head = req.method() == http::verb::head;
    const bool has_body = !parser.is_done();
    const bool chunked = parser.chunked();
    const bool client_http11 = req.version() >= 11;
    const bool expect_continue = has_body && beast::iequals(req[http::field::expect], "100-continue");

    // A request without body has its head copied by write_head, which
    // leaves out the hop-by-hop fields and adds the forwarding ones without
    // touching `req`; Beast's serializer (a body, or a head too large for
    // write_head) needs them done in the fields, once.
    if (connection_names_fields(req)) strip_hop_by_hop(req);  // fields write_head cannot tell
    bool serializable = false;
    const auto make_serializable = [&] {
        if (serializable) return;
        serializable = true;
        strip_hop_by_hop(req);
        req.erase(http::field::expect);  // answered here, below
        append_field(req, "X-Forwarded-For", client.address);
        req.set("X-Forwarded-Proto", "http");
        append_field(req, "Via", "1.1 sidecache");
        req.version(11);
        if (chunked) req.chunked(true);  // else Content-Length, if any, stays as sent
    };

    if (expect_continue) {
        static constexpr std::string_view continue_100 = "HTTP/1.1 100 Continue\r\n\r\n";
        client.stream.expires_after(client.body_timeout);
        auto [ec, n] = co_await net::async_write(client.stream, net::buffer(continue_100), use_tuple);
        if (ec) {
            out.ec = ec;
            co_return out;
        }
    }

    // A stale pooled connection costs such a request one retry (below), so
    // the pool need not peek at it first; a retry does not gamble twice.
    const bool retriable = !has_body && is_idempotent(req.method());
    const auto deadline = clock::now() + upstream.config().response_timeout;
    const auto executor = co_await net::this_coro::executor;
    for (int attempt = 0;; ++attempt) {
        const bool probe = attempt > 0 || !retriable;
        auto leased = upstream.try_acquire(executor, probe);
        if (!leased) {
            auto acquired = co_await upstream.acquire(deadline, probe);
            if (!acquired) {
                out.ec = acquired.error();
                out.upstream_fault = true;
                co_return out;
            }
            leased.emplace(std::move(*acquired));
        }
        auto& up = leased->conn();

        // The request: head (and body, relayed from the client).
        error_code ec;
        bool write_failed = false;
        head_writer request_head{client.scratch};
        if (!has_body) write_head(req, client.address, request_head);
        if (!has_body && request_head.ok) {
            const two_buffers buffers{request_head.buffer(), net::const_buffer{}};
            std::size_t sent = 0;
            ec = send_now(up.stream, buffers, sent);
            if (ec == net::error::would_block) ec = co_await send_rest(up.stream, buffers, sent, deadline);
            write_failed = bool(ec);
        } else {
            make_serializable();
            http::request_serializer<http::buffer_body> sr{req};
            if (!has_body) {
                req.body().data = nullptr;
                req.body().size = 0;
                req.body().more = false;
                ec = write_now(up.stream, sr);
                if (ec == net::error::would_block) {
                    up.stream.expires_at(deadline);
                    auto [wec, n] = co_await http::async_write(up.stream, sr, use_tuple);
                    ec = wec;
                }
                write_failed = bool(ec);
            } else {
                std::uint64_t sent = 0;
                auto [rec, from_client] = co_await relay(client.stream, client.buffer, parser, up.stream,
                                                         sr, client.scratch, client.body_timeout, sent);
                if (rec && from_client) {
                    out.ec = rec;  // body_limit, bad chunk, client gone: the upstream connection is dropped
                    co_return out;
                }
                ec = rec;
            }
        }

        // The response head, as the common answer (no interim 1xx, no body
        // or a Content-Length body) is handled: read until its blank line is
        // buffered, then parsed in one put() and copied to the client's head
        // as it is parsed. The upstream's bytes are consumed only once it is
        // known to be that answer (Beast's parser consumes a head that
        // arrives in pieces piece by piece, so it is given the whole).
        constexpr std::size_t head_limit = 64 * 1024;
        head_writer response_head{client.scratch};
        std::size_t head_bytes = 0;
        std::optional<streamed_response_head> streamed;
        bool whole = false;  // the streamed parser saw a whole head
        for (std::size_t scanned = 0; !ec;) {
            const auto data = up.buffer.data();
            const std::string_view bytes(static_cast<const char*>(data.data()), data.size());
            if (bytes.find("\r\n\r\n", scanned) != std::string_view::npos) {
                streamed.emplace(response_head);
                streamed->header_limit(head_limit);
                streamed->body_limit(std::numeric_limits<std::uint64_t>::max());
                if (head) streamed->skip(true);
                head_bytes = streamed->put(data, ec);
                whole = !ec;
                if (ec == http::error::need_more) ec = {};  // not expected: Beast's parser reads it below
                break;
            }
            if (bytes.size() >= head_limit) {
                ec = http::error::header_limit;
                break;
            }
            scanned = bytes.size() < 3 ? 0 : bytes.size() - 3;
            up.stream.expires_at(deadline);
            auto [rec, n] = co_await up.stream.async_read_some(
                up.buffer.prepare(beast::read_size(up.buffer, head_limit)), use_tuple);
            ec = rec;
            if (!ec) up.buffer.commit(n);
        }
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
        bool keep_alive = client.keep_alive && !(client.closing && client.closing->load());
        const auto status = whole ? streamed->status() : 0;
        bool bodyless = head || status == 204 || status == 304;
        bool sized = whole && !bodyless && !streamed->chunked() && streamed->content_length().has_value();
        bool upstream_keep_alive = whole && streamed->keep_alive();
        std::uint64_t remaining = sized ? *streamed->content_length() : 0;
        const bool simple = whole && streamed->simple() && (bodyless || sized);
        if (simple) {
            if (!keep_alive) {
                response_head.put("Connection: close\r\n");
            } else if (!client_http11) {
                response_head.put("Connection: keep-alive\r\n");
            }
            response_head.put("\r\n");
        }
        const bool copied = simple && response_head.ok;
        std::optional<http::response_parser<http::buffer_body>> rp;
        if (copied) {
            up.buffer.consume(head_bytes);
            out.status = status;
        } else {
            // Parsed again from the same bytes by Beast's parser, which
            // builds the fields; interim 1xx answers are skipped.
            while (!ec) {
                rp.emplace();
                rp->body_limit(std::numeric_limits<std::uint64_t>::max());
                rp->header_limit(64 * 1024);
                if (head) rp->skip(true);
                up.stream.expires_at(deadline);
                auto [hec, n] = co_await http::async_read_header(up.stream, up.buffer, *rp, use_tuple);
                ec = hec;
                if (ec || rp->get().result_int() / 100 != 1 || rp->get().result_int() == 101) break;
            }
            if (ec) {
                out.ec = upstream_error_for(ec);
                out.upstream_fault = true;
                co_return out;
            }
            out.status = rp->get().result_int();
            bodyless = head || out.status == 204 || out.status == 304;
            sized = !bodyless && !rp->chunked() && rp->content_length().has_value();
            upstream_keep_alive = rp->keep_alive();
            remaining = sized ? *rp->content_length() : 0;
        }
        const bool until_eof = !copied && !bodyless && !rp->chunked() && !rp->content_length();
        if (!copied) {
            // The response: head as the upstream sent it minus hop-by-hop
            // fields, body relayed with its own framing re-applied.
            auto& res = rp->get();
            strip_hop_by_hop(res);
            res.version(11);
            if (!bodyless) {
                if (rp->chunked() || (until_eof && client_http11)) {
                    res.chunked(true);
                } else if (until_eof) {
                    keep_alive = false;  // an HTTP/1.0 client: the end of the body is the close
                }
            }
            if (!keep_alive) {
                res.set(http::field::connection, "close");
            } else if (!client_http11) {
                res.set(http::field::connection, "keep-alive");
            }
            response_head = head_writer{client.scratch};
            if (bodyless || sized) write_head(res, response_head);
        }

        // The common answers (no body, or a Content-Length body) go out as
        // the head plus the body bytes already read with it, in one write;
        // the rest of the body is copied as it arrives.
        if ((bodyless || sized) && response_head.ok) {
            // The upstream connection goes back to the pool as soon as the
            // answer is read whole, before its last bytes reach the client: a
            // client that sends its next request at once finds it idle.
            // Nothing sent after that points into the connection's buffer.
            out.response_started = true;
            const auto first = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, up.buffer.size()));
            net::const_buffer body{up.buffer.data().data(), first};
            bool returned = false;  // the lease is given back: `up` is not ours any more
            if (first == remaining && first <= client.scratch.size() - response_head.size) {
                // All of it is here (the usual small answer): copied after the head.
                if (first != 0) std::memcpy(client.scratch.data() + response_head.size, body.data(), first);
                body = net::const_buffer{client.scratch.data() + response_head.size, first};
                up.buffer.consume(first);
                leased->release(upstream_keep_alive);
                returned = true;
            }
            const two_buffers buffers{response_head.buffer(), body};
            std::size_t sent = 0;
            ec = send_now(client.stream, buffers, sent);
            if (ec == net::error::would_block) {
                ec = co_await send_rest(client.stream, buffers, sent, clock::now() + client.body_timeout);
            }
            if (ec) {
                out.ec = ec;  // the client went away
                co_return out;
            }
            if (!returned) up.buffer.consume(first);
            remaining -= first;
            out.body_bytes += first;
            while (remaining > 0) {
                const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, client.scratch.size()));
                up.stream.expires_after(client.body_timeout);
                auto [rec, n] = co_await up.stream.async_read_some(net::buffer(client.scratch.data(), want), use_tuple);
                if (rec) {
                    out.ec = upstream_error_for(rec);
                    out.upstream_fault = true;
                    co_return out;
                }
                remaining -= n;
                out.body_bytes += n;
                if (remaining == 0) leased->release(upstream_keep_alive);  // the last chunk is in scratch
                const two_buffers chunk{net::buffer(client.scratch.data(), n), net::const_buffer{}};
                std::size_t sent = 0;
                ec = send_now(client.stream, chunk, sent);
                if (ec == net::error::would_block) {
                    ec = co_await send_rest(client.stream, chunk, sent, clock::now() + client.body_timeout);
                }
                if (ec) {
                    out.ec = ec;
                    co_return out;
                }
            }
            // Read to its end: reusable if the upstream allows it (the pool
            // drops a connection with unasked bytes buffered).
            leased->release(upstream_keep_alive);  // no-op if released above
            out.keep_alive = keep_alive;
            co_return out;
        }

        auto& res = rp->get();
        http::response_serializer<http::buffer_body> sr{res};
        out.response_started = true;
        if (bodyless) {
            res.body().data = nullptr;
            res.body().size = 0;
            res.body().more = false;
            ec = write_now(client.stream, sr);
            if (ec == net::error::would_block) {
                client.stream.expires_after(client.body_timeout);
                auto [wec, n] = co_await http::async_write(client.stream, sr, use_tuple);
                ec = wec;
            }
        } else {
            auto [rec, from_upstream] = co_await relay(up.stream, up.buffer, *rp, client.stream, sr,
                                                       client.scratch, client.body_timeout,
                                                       out.body_bytes);
            ec = rec;
            if (ec && from_upstream) {
                out.ec = upstream_error_for(ec);
                out.upstream_fault = true;
                co_return out;
            }
        }
        if (ec) {
            out.ec = ec;  // the client went away
            co_return out;
        }
        leased->release(upstream_keep_alive && !until_eof && rp->is_done());
        out.keep_alive = keep_alive;
        co_return out;
    }
}

}  // namespace sidecache::upstream
