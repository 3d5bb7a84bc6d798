// RESP through hiredis: command bytes and the reader's replies.

#include "l2/resp.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace sidecache::l2;
using namespace std::string_literals;

TEST_CASE("format_command writes binary-safe RESP arrays [unit]") {
    CHECK(format_command({"GET", "k"}) == "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    CHECK(format_command({"SET", "k", "a\0\r\nb"s}) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\0\r\nb\r\n"s);
}

TEST_CASE("resp_reader builds replies fed in pieces, and refuses garbled bytes [unit]") {
    resp_reader reader;
    SECTION("a nested array fed one byte at a time") {
        const auto wire = "*4\r\n:42\r\n$3\r\na\0b\r\n$-1\r\n*2\r\n+OK\r\n-ERR no\r\n"s;
        for (std::size_t i = 0; i + 1 < wire.size(); ++i) {
            REQUIRE(reader.feed(wire.data() + i, 1));
            auto none = reader.next();
            REQUIRE(none.has_value());
            REQUIRE_FALSE(none->has_value());
        }
        REQUIRE(reader.feed(wire.data() + wire.size() - 1, 1));
        auto r = reader.next();
        REQUIRE(r.has_value());
        REQUIRE(r->has_value());
        const reply& top = **r;
        REQUIRE(top.type == reply::kind::array);
        REQUIRE(top.elements.size() == 4);
        CHECK(top.elements[0].type == reply::kind::integer);
        CHECK(top.elements[0].integer == 42);
        CHECK(top.elements[1].type == reply::kind::string);
        CHECK(top.elements[1].str == "a\0b"s);
        CHECK(top.elements[2].type == reply::kind::nil);
        REQUIRE(top.elements[3].elements.size() == 2);
        CHECK(top.elements[3].elements[0].type == reply::kind::status);
        CHECK(top.elements[3].elements[0].str == "OK");
        CHECK(top.elements[3].elements[1].type == reply::kind::error);
        CHECK(top.elements[3].elements[1].str == "ERR no");
    }
    SECTION("a byte that starts no RESP type") {
        REQUIRE(reader.feed("?what\r\n", 7));
        auto r = reader.next();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == make_error_code(error::protocol));
    }
}
