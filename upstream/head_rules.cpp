#include "upstream/head_rules.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <charconv>
#include <cstring>
#include <vector>

namespace sidecache::upstream {

namespace beast = boost::beast;
namespace http = beast::http;

void head_writer::put(std::string_view s) {
    if (ok_ && s.size() <= out_.size() - size_) {
        if (!s.empty()) std::memcpy(out_.data() + size_, s.data(), s.size());
    } else {
        ok_ = false;
    }
    size_ += s.size();
}

void head_writer::field(std::string_view name, std::string_view value) {
    put(name);
    put(": ");
    put(value);
    put("\r\n");
}

bool is_hop_by_hop(http::field f) {
    switch (f) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
    case http::field::proxy_authenticate:
    case http::field::proxy_authorization:
        return true;
    default:
        return false;
    }
}

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
        const bool connection = it->name() == http::field::connection;
        bool hop = !connection && is_hop_by_hop(it->name());
        if (!hop && !connection) {
            for (auto name : named) hop = hop || beast::iequals(name, it->name_string());
        }
        it = hop ? fields.erase(it) : std::next(it);
    }
    fields.erase(http::field::connection);
}

bool ambiguous_framing(const http::fields& f) {
    std::size_t te_fields = 0;
    bool te_is_chunked = false;
    for (const auto& field : f) {
        if (field.name() != http::field::transfer_encoding) continue;
        ++te_fields;
        auto v = field.value();
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
        te_is_chunked = beast::iequals(v, "chunked");
    }
    if (te_fields == 0) return false;
    return te_fields > 1 || !te_is_chunked || f.find(http::field::content_length) != f.end();
}

void write_request_head(const http::request_header<>& req, std::string_view client_address, bool chunked,
                        head_writer& w) {
    w.put(req.method_string());
    w.put(" ");
    w.put(req.target());
    w.put(" HTTP/1.1\r\n");
    const auto is = [](const http::fields::value_type& f, std::string_view name) {
        return beast::iequals(f.name_string(), name);  // unequal lengths: no character compared
    };
    for (const auto& field : req) {
        const auto name = field.name();
        if (name == http::field::via || name == http::field::expect || is_hop_by_hop(name) ||
            is(field, "X-Forwarded-For") || is(field, "X-Forwarded-Proto"))
            continue;
        w.field(field.name_string(), field.value());
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
    if (chunked) w.put("Transfer-Encoding: chunked\r\n");
    w.put("\r\n");
}

response_framing frame_response(bool head_request, unsigned status, bool chunked,
                                std::optional<std::uint64_t> content_length, bool client_http11,
                                bool keep_alive) {
    response_framing r;
    r.bodyless = head_request || status == 204 || status == 304;
    r.sized = !r.bodyless && !chunked && content_length.has_value();
    r.until_eof = !r.bodyless && !chunked && !content_length;
    r.chunked = !r.bodyless && (chunked || (r.until_eof && client_http11));
    r.keep_alive = keep_alive && (client_http11 || !r.until_eof);  // HTTP/1.0: the close ends the body
    r.client_http11 = client_http11;
    return r;
}

bool valid_status(unsigned status) { return status >= 100 && status <= 599; }

void write_status_line(unsigned status, std::string_view reason, head_writer& w) {
    char digits[16];
    const auto end = std::to_chars(digits, digits + sizeof digits, status).ptr;
    w.put("HTTP/1.1 ");
    w.put({digits, static_cast<std::size_t>(end - digits)});
    w.put(" ");
    w.put(reason);
    w.put("\r\n");
}

void end_response_head(const response_framing& framing, head_writer& w) {
    if (framing.chunked) w.put("Transfer-Encoding: chunked\r\n");
    if (!framing.keep_alive) {
        w.put("Connection: close\r\n");
    } else if (!framing.client_http11) {
        w.put("Connection: keep-alive\r\n");
    }
    w.put("\r\n");
}

void write_response_head(const http::response_header<>& res, const response_framing& framing,
                         head_writer& w) {
    write_status_line(res.result_int(), res.reason(), w);
    for (const auto& field : res) {
        if (!is_hop_by_hop(field.name())) w.field(field.name_string(), field.value());
    }
    end_response_head(framing, w);
}

}  // namespace sidecache::upstream
