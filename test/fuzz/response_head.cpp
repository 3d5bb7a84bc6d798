// Fuzz target: an upstream's response head as upstream/forward.cpp turns it
// into the client's: copied by streamed_head while Beast's parser reads it
// (copy_head), else parsed by an http::parser and written from its fields
// (reparse_head), framed by frame_response() and end_response_head().
//
// The first input byte is the exchange: bit 0 a HEAD request, bit 1 an
// HTTP/1.1 client, bit 2 keep-alive allowed, bit 3 a scratch buffer of 256
// bytes instead of forward's 16 KiB (the too-large path). The rest is what
// the upstream sent.
//
// Checks beyond the sanitizers: the head written for the client parses back
// as a response head with the same status, carries no hop-by-hop field but
// the Connection and Transfer-Encoding that end_response_head() adds, and
// the streamed copy writes the same head as the reparsed one (up to the
// order of fields of different names and the reason phrase).
#include "upstream/head_rules.hpp"
#include "upstream/streamed_head.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace sidecache;
using namespace sidecache::upstream;
namespace http = boost::beast::http;

namespace {

constexpr std::size_t head_limit = 64 * 1024;  // as forward.cpp

struct exchange {
    bool head_request;
    bool client_http11;
    bool keep_alive;
    std::size_t scratch;
};

[[noreturn]] void fail(const char* what, std::string_view head = {}) {
    std::fprintf(stderr, "response_head: %s\n%.*s\n", what, static_cast<int>(head.size()), head.data());
    std::abort();
}

std::optional<std::uint64_t> to_std(const boost::optional<std::uint64_t>& v) {
    return v ? std::optional<std::uint64_t>(*v) : std::nullopt;
}

// copy_head(): the head as the client gets it, when it is the common answer.
std::optional<std::string> streamed(const exchange& x, std::string_view bytes) {
    std::vector<char> scratch(x.scratch);
    head_writer head{scratch};
    streamed_head parser(head);
    parser.header_limit(head_limit);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (x.head_request) parser.skip(true);
    boost::system::error_code ec;
    parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec || !parser.is_header_done() || !parser.simple()) return std::nullopt;
    const auto framing = frame_response(x.head_request, parser.status(), parser.chunked(),
                                        to_std(parser.content_length()), x.client_http11, x.keep_alive);
    if (!framing.bodyless && !framing.sized) return std::nullopt;
    end_response_head(framing, head);
    if (!head.ok()) return std::nullopt;
    return std::string(head.bytes());
}

// reparse_head(): any answer, from the fields, interim 1xx skipped.
std::optional<std::string> reparsed(const exchange& x, std::string_view bytes, unsigned& status) {
    std::optional<http::response_parser<http::buffer_body>> parser;
    for (;;) {
        parser.emplace();
        parser->header_limit(head_limit);
        parser->body_limit(std::numeric_limits<std::uint64_t>::max());
        if (x.head_request) parser->skip(true);
        boost::system::error_code ec;
        const auto used = parser->put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
        if (ec || !parser->is_header_done()) return std::nullopt;
        bytes.remove_prefix(used);
        status = parser->get().result_int();
        if (!valid_status(status)) return std::nullopt;  // 502
        if (status / 100 != 1 || status == 101) break;
    }
    auto& res = parser->get();
    const auto framing = frame_response(x.head_request, status, parser->chunked(),
                                        to_std(parser->content_length()), x.client_http11, x.keep_alive);
    if (connection_names_fields(res)) strip_hop_by_hop(res);
    std::vector<char> scratch(x.scratch);
    head_writer head{scratch};
    write_response_head(res, framing, head);
    if (!head.ok()) {
        std::vector<char> large(head.size());
        head = head_writer{large};
        write_response_head(res, framing, head);
        if (!head.ok() || head.size() != large.size()) fail("the head does not fit the size it asked for");
        return std::string(head.bytes());
    }
    return std::string(head.bytes());
}

// A head's lines with its fields in a canonical order: the status line,
// then the field lines stably sorted by name. Beast's http::fields keeps the
// fields of one name together (a field inserted after others of its name
// goes after the last of them), so the reparsed head may order fields of
// different names otherwise than the upstream did; both keep the order of
// one name's fields, the one order that carries meaning (RFC 9110 §5.3).
std::vector<std::string> canonical(std::string_view head) {
    std::vector<std::string> lines;
    for (std::size_t at = 0; at < head.size();) {
        const auto end = head.find("\r\n", at);
        if (end == std::string_view::npos) break;
        lines.emplace_back(head.substr(at, end - at));
        at = end + 2;
    }
    const auto name = [](const std::string& line) {
        std::string n = line.substr(0, line.find(':'));
        for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return n;
    };
    if (lines.empty()) return lines;
    // The reason phrase aside: Beast's fields give an empty one as the
    // status's usual phrase ("502 " becomes "502 Bad Gateway"); both are
    // valid and clients ignore it (RFC 9112 §4).
    lines.front().resize(std::min<std::size_t>(lines.front().size(), 12));  // "HTTP/1.1 NNN"
    std::stable_sort(lines.begin() + 1, lines.end(),
                         [&](const std::string& a, const std::string& b) { return name(a) < name(b); });
    return lines;
}

// The client's view of the head: it parses, with the status we read.
void check_client_head(std::string_view head, unsigned status) {
    http::response_parser<http::empty_body> client;
    client.header_limit(std::numeric_limits<std::uint32_t>::max());
    client.skip(true);  // the head alone
    boost::system::error_code ec;
    client.put(boost::asio::buffer(head.data(), head.size()), ec);
    if (ec) fail(("the client's head does not parse: " + ec.message()).c_str(), head);
    if (!client.is_header_done()) fail("the client's head is incomplete", head);
    if (client.get().result_int() != status) fail("the client's head has another status", head);
    std::size_t connection = 0, transfer_encoding = 0;
    for (const auto& f : client.get()) {
        if (f.name() == http::field::connection) ++connection;
        else if (f.name() == http::field::transfer_encoding) ++transfer_encoding;
        else if (is_hop_by_hop(f.name())) fail("a hop-by-hop field reaches the client", head);
    }
    if (connection > 1 || transfer_encoding > 1) fail("Connection or Transfer-Encoding twice", head);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const exchange x{(data[0] & 1) != 0, (data[0] & 2) != 0, (data[0] & 4) != 0,
                     (data[0] & 8) != 0 ? 256u : 16u * 1024};
    const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

    unsigned status = 0;
    const auto full = reparsed(x, bytes, status);
    if (full) check_client_head(*full, status);
    if (const auto copy = streamed(x, bytes)) {
        if (!full) fail("streamed_head took a head that Beast's parser refuses", *copy);
        if (canonical(*copy) != canonical(*full)) fail(("the streamed copy differs from the reparsed head:\n" + *full).c_str(), *copy);
    }
    return 0;
}
