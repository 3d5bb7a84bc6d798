#pragma once
// The rules a forwarded message's head goes by, each written once, as pure
// functions (no I/O): which fields are hop-by-hop, the request's framing
// check, the forwarded request head (X-Forwarded-For, X-Forwarded-Proto,
// Via), and how a response is framed and kept alive towards the client.
// forward.cpp applies them; test/upstream/test_head_rules.cpp checks them.

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace sidecache::upstream {

// A message head written into caller-owned memory, piece by piece: no
// allocation, no serializer. When a piece does not fit, ok() turns false
// and size() goes on counting what the whole head needs.
class head_writer {
public:
    explicit head_writer(std::span<char> out) : out_(out) {}

    void put(std::string_view s);
    void field(std::string_view name, std::string_view value);  // "name: value\r\n"

    bool ok() const { return ok_; }
    std::size_t size() const { return size_; }  // written, or needed when !ok()
    std::string_view bytes() const { return {out_.data(), ok_ ? size_ : 0}; }
    std::span<char> room() const { return ok_ ? out_.subspan(size_) : std::span<char>{}; }  // after the head

private:
    std::span<char> out_;
    std::size_t size_ = 0;
    bool ok_ = true;
};

// Hop-by-hop fields known by name (RFC 9110 §7.6.1): Connection,
// Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
// Proxy-Authenticate, Proxy-Authorization. Connection may name others.
bool is_hop_by_hop(boost::beast::http::field f);

// Whether a Connection value names a field (any token but close and
// keep-alive): that field is hop-by-hop too.
bool names_fields(std::string_view connection_value);
bool connection_names_fields(const boost::beast::http::fields& f);

// Removes the hop-by-hop fields: the known ones and every one Connection names.
void strip_hop_by_hop(boost::beast::http::fields& fields);

// Content-Length with Transfer-Encoding, several Transfer-Encoding fields,
// or a coding other than a single `chunked`: the request's end is ambiguous
// and a proxy must refuse it (RFC 9112 §6.1, request smuggling).
bool ambiguous_framing(const boost::beast::http::fields& f);

// The forwarded request head, as HTTP/1.1: the client's fields minus
// hop-by-hop ones and Expect (answered by the proxy), then X-Forwarded-For
// and Via with our hop appended to what the client sent (several fields of
// one name joined by ", ") and X-Forwarded-Proto, then
// "Transfer-Encoding: chunked" for a chunked body (Content-Length, if any,
// stays as sent). `req` is not changed: fields that Connection names are
// not known here, strip_hop_by_hop() first when connection_names_fields().
void write_request_head(const boost::beast::http::request_header<>& req, std::string_view client_address,
                        bool chunked, head_writer& w);

// How a response's body reaches the client, and whether the client
// connection lasts.
struct response_framing {
    bool bodyless = false;    // HEAD, 204, 304: no body, whatever the fields say
    bool sized = false;       // Content-Length: relayed as counted bytes
    bool until_eof = false;   // neither chunked nor sized: the upstream's close ends it
    bool chunked = false;     // re-chunked to the client (chunked, or until-EOF to HTTP/1.1)
    bool keep_alive = false;  // the client connection may serve another request
    bool client_http11 = true;
};

// `keep_alive`: the client's request and the server allow another request.
// An HTTP/1.0 client sees an until-EOF body end with the connection.
response_framing frame_response(bool head_request, unsigned status, bool chunked,
                                std::optional<std::uint64_t> content_length, bool client_http11,
                                bool keep_alive);

// Whether an upstream's status may be relayed: 100..599 (RFC 9110 §15).
// Beast's parser takes any three digits; "000" or "099" went out as
// "HTTP/1.1 0", a status line no client parses (found by
// test/fuzz/response_head.cpp). Others are a bad upstream answer (502).
bool valid_status(unsigned status);

// "HTTP/1.1 <status> <reason>\r\n".
void write_status_line(unsigned status, std::string_view reason, head_writer& w);

// The end of a response head after its forwarded fields: Transfer-Encoding
// when re-chunked, the Connection the client needs to hear, the blank line.
void end_response_head(const response_framing& framing, head_writer& w);

// A whole response head from parsed fields: status line, the fields minus
// hop-by-hop ones (strip_hop_by_hop() first when Connection names others),
// end_response_head().
void write_response_head(const boost::beast::http::response_header<>& res, const response_framing& framing,
                         head_writer& w);

}  // namespace sidecache::upstream
