// The head rules of a forwarded exchange (upstream/head_rules.hpp) and the
// streamed copy of a response head: pure, no I/O. Each test writes a head
// into a buffer and checks its bytes.
#include "upstream/head_rules.hpp"
#include "upstream/streamed_head.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <catch2/catch.hpp>

#include <array>
#include <string>

using namespace sidecache::upstream;
namespace http = boost::beast::http;

namespace {

// Parses a request head the way the session does.
http::request<http::empty_body> parse_request(const std::string& head) {
    http::request_parser<http::empty_body> p;
    boost::system::error_code ec;
    p.put(boost::asio::buffer(head), ec);
    REQUIRE_FALSE(ec);
    return p.release();
}

http::response<http::empty_body> parse_response(const std::string& head) {
    http::response_parser<http::empty_body> p;
    p.skip(true);
    boost::system::error_code ec;
    p.put(boost::asio::buffer(head), ec);
    REQUIRE_FALSE(ec);
    return p.release();
}

std::string request_head(const std::string& client_head, bool chunked = false) {
    auto req = parse_request(client_head);
    if (connection_names_fields(req)) strip_hop_by_hop(req);
    std::array<char, 1024> out;
    head_writer w{out};
    write_request_head(req, "127.0.0.1", chunked, w);
    REQUIRE(w.ok());
    return std::string(w.bytes());
}

}  // namespace

TEST_CASE("head_writer counts what a head needs when it does not fit", "[unit]") {
    std::array<char, 8> out;
    head_writer w{out};
    w.put("HTTP/1.1");
    CHECK(w.ok());
    CHECK(w.bytes() == "HTTP/1.1");
    CHECK(w.room().empty());
    w.field("A", "b");
    CHECK_FALSE(w.ok());
    CHECK(w.size() == 14);
    CHECK(w.bytes().empty());
}

TEST_CASE("the forwarded request: hop-by-hop fields and Expect dropped, forwarding fields appended",
          "[unit]") {
    CHECK(request_head("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\n"
                       "TE: trailers\r\nUpgrade: h2c\r\nProxy-Authorization: x\r\nX-Keep: kept\r\n\r\n") ==
          "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Keep: kept\r\n"
          "X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nVia: 1.1 sidecache\r\n\r\n");
    SECTION("forwarding fields the client sent are joined with ours") {
        CHECK(request_head("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\nVia: 1.0 a\r\n"
                           "x-forwarded-for: 10.0.0.2\r\nX-Forwarded-Proto: https\r\nVia: 1.1 b\r\n\r\n") ==
              "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2, 127.0.0.1\r\n"
              "X-Forwarded-Proto: http\r\nVia: 1.0 a, 1.1 b, 1.1 sidecache\r\n\r\n");
    }
    SECTION("fields Connection names are dropped") {
        CHECK(
            request_head("GET / HTTP/1.1\r\nHost: x\r\nX-Secret: s\r\nConnection: close, x-secret\r\n\r\n") ==
            "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"
            "Via: 1.1 sidecache\r\n\r\n");
    }
    SECTION("an HTTP/1.0 request goes as HTTP/1.1; a chunked body stays chunked, Expect is ours") {
        CHECK(request_head("POST /p HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n",
                           true) ==
              "POST /p HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"
              "Via: 1.1 sidecache\r\nTransfer-Encoding: chunked\r\n\r\n");
    }
}

TEST_CASE("strip_hop_by_hop removes the known fields and those Connection names", "[unit]") {
    http::fields f;
    f.insert("Host", "x");
    f.insert("Connection", "close, X-A");
    f.insert("x-a", "1");
    f.insert("Transfer-Encoding", "chunked");
    f.insert("Proxy-Connection", "keep-alive");
    f.insert("X-B", "2");
    CHECK(connection_names_fields(f));
    strip_hop_by_hop(f);
    std::string left;
    for (const auto& field : f) left += std::string(field.name_string()) + ";";
    CHECK(left == "Host;X-B;");
    CHECK_FALSE(connection_names_fields(f));
}

TEST_CASE("ambiguous request framing is recognised", "[unit]") {
    const auto [fields, ambiguous] = GENERATE(table<std::string, bool>({
        {"Content-Length: 5\r\n", false},
        {"Transfer-Encoding: chunked\r\n", false},
        {"Transfer-Encoding:  chunked \r\n", false},
        {"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", true},
        {"Transfer-Encoding: gzip, chunked\r\n", true},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", true},
    }));
    http::fields f;
    std::string_view rest = fields;
    while (!rest.empty()) {
        const auto colon = rest.find(':');
        const auto end = rest.find("\r\n");
        f.insert(std::string(rest.substr(0, colon)), std::string(rest.substr(colon + 1, end - colon - 1)));
        rest.remove_prefix(end + 2);
    }
    CHECK(ambiguous_framing(f) == ambiguous);
}

TEST_CASE("response framing and the Connection the client hears", "[unit]") {
    SECTION("a Content-Length answer to an HTTP/1.1 client that keeps the connection") {
        const auto r = frame_response(false, 200, false, 5, true, true);
        CHECK((r.sized && !r.chunked && !r.until_eof && r.keep_alive));
    }
    SECTION("HEAD, 204 and 304 have no body whatever the fields say") {
        CHECK(frame_response(true, 200, true, std::nullopt, true, true).bodyless);
        CHECK(frame_response(false, 204, false, std::nullopt, true, true).bodyless);
        CHECK(frame_response(false, 304, false, 7, true, true).bodyless);
        CHECK_FALSE(frame_response(false, 304, false, 7, true, true).sized);
    }
    SECTION("a body ending at the upstream's close: chunked to HTTP/1.1, the close to HTTP/1.0") {
        const auto http11 = frame_response(false, 200, false, std::nullopt, true, true);
        CHECK((http11.until_eof && http11.chunked && http11.keep_alive));
        const auto http10 = frame_response(false, 200, false, std::nullopt, false, true);
        CHECK((http10.until_eof && !http10.chunked && !http10.keep_alive));
    }
    std::array<char, 256> out;
    head_writer w{out};
    SECTION("Connection: close when the connection ends, keep-alive for HTTP/1.0 when it lasts") {
        end_response_head(frame_response(false, 200, false, 5, true, false), w);
        CHECK(w.bytes() == "Connection: close\r\n\r\n");
        head_writer w10{out};
        end_response_head(frame_response(false, 200, false, 5, false, true), w10);
        CHECK(w10.bytes() == "Connection: keep-alive\r\n\r\n");
        head_writer w11{out};
        end_response_head(frame_response(false, 200, false, 5, true, true), w11);
        CHECK(w11.bytes() == "\r\n");
    }
    SECTION("a re-chunked body says so") {
        end_response_head(frame_response(false, 200, true, std::nullopt, true, true), w);
        CHECK(w.bytes() == "Transfer-Encoding: chunked\r\n\r\n");
    }
}

TEST_CASE("a response head is the same whether copied as parsed or written from fields", "[unit]") {
    const std::string upstream =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\n"
        "Keep-Alive: timeout=5\r\nX-Up: 1\r\nContent-Length: 5\r\n\r\n";
    const std::string expected =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Up: 1\r\n"
        "Content-Length: 5\r\nConnection: keep-alive\r\n\r\n";
    const auto framing = frame_response(false, 200, false, 5, false, true);

    std::array<char, 512> copied_out;
    head_writer copied{copied_out};
    streamed_head streamed(copied);
    boost::system::error_code ec;
    streamed.put(boost::asio::buffer(upstream), ec);
    REQUIRE_FALSE(ec);
    REQUIRE(streamed.simple());
    CHECK(streamed.status() == 200);
    end_response_head(framing, copied);
    CHECK(copied.bytes() == expected);

    std::array<char, 512> written_out;
    head_writer written{written_out};
    write_response_head(parse_response(upstream), framing, written);
    CHECK(written.bytes() == expected);

    SECTION("an interim answer or a Connection naming a field is not for the streamed copy") {
        for (const std::string head :
             {"HTTP/1.1 100 Continue\r\n\r\n",
              "HTTP/1.1 200 OK\r\nConnection: x-a\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n"}) {
            head_writer w{copied_out};
            streamed_head s(w);
            s.put(boost::asio::buffer(head), ec);
            CHECK_FALSE(s.simple());
        }
    }
}

// Found by test/fuzz/response_head.cpp: Beast's parser takes any three
// digits, and a status of "000" went out to the client as "HTTP/1.1 0".
TEST_CASE("an upstream status outside 100..599 is refused by the streamed copy", "[unit]") {
    CHECK(valid_status(100));
    CHECK(valid_status(599));
    CHECK_FALSE(valid_status(0));
    CHECK_FALSE(valid_status(99));
    CHECK_FALSE(valid_status(600));
    const std::string head = GENERATE(std::string("HTTP/1.1 000 Continue\r\n\r\n"),
                                      std::string("HTTP/1.1 099 OK\r\nContent-Length: 0\r\n\r\n"),
                                      std::string("HTTP/1.1 600 OK\r\nContent-Length: 0\r\n\r\n"));
    std::array<char, 512> out;
    head_writer w{out};
    streamed_head s(w);
    boost::system::error_code ec;
    s.put(boost::asio::buffer(head), ec);
    CHECK(ec == http::error::bad_status);
}
