// l2::encode / decode: the bytes of a second-level value round-trip; a value
// of another key, cut short, or garbled never decodes (never served).
#include "l2/value.hpp"

#include <catch2/catch.hpp>

using namespace sidecache;

namespace {

l2::stored_value sample() {
    l2::stored_value v;
    v.key = "overview\nu1\nrange=7d";
    v.user_generation = "1764000000000001";
    v.global_generation = "1764000000000002";
    v.computed_at_ms = 1'764'000'000'123;
    v.expires_at_ms = 1'764'000'030'123;
    v.status = 200;
    v.headers = {{"Content-Type", "application/json; charset=utf-8"}, {"ETag", "\"abc\""}};
    v.tags = {"agent:a1", "agent:a2"};
    v.body = std::string("{\"ok\":true}\0\xff", 13);
    return v;
}

}  // namespace

TEST_CASE("l2 value: what encode wrote decodes to the same fields", "[unit]") {
    auto v = sample();
    auto got = l2::decode(l2::encode(v), v.key);
    REQUIRE(got.has_value());
    CHECK(got->key == v.key);
    CHECK(got->user_generation == v.user_generation);
    CHECK(got->global_generation == v.global_generation);
    CHECK(got->computed_at_ms == v.computed_at_ms);
    CHECK(got->expires_at_ms == v.expires_at_ms);
    CHECK(got->status == 200);
    CHECK(got->headers == v.headers);
    CHECK(got->tags == v.tags);
    CHECK(got->body == v.body);
}

TEST_CASE("l2 value: another key's value is refused", "[unit]") {
    auto v = sample();
    auto bytes = l2::encode(v);
    // Another user, a key that only starts the same, a key that is a prefix.
    for (std::string other : {"overview\nu2\nrange=7d", "overview\nu1\nrange=7d2", "overview\nu1\n"}) {
        CAPTURE(other);
        auto got = l2::decode(bytes, other);
        REQUIRE_FALSE(got.has_value());
        CHECK(got.error() == l2::decode_error::other_key);
    }
}

TEST_CASE("l2 value: every truncation, a trailing byte, a wrong magic are refused", "[unit]") {
    auto v = sample();
    auto bytes = l2::encode(v);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        CAPTURE(n);
        CHECK_FALSE(l2::decode(bytes.substr(0, n), v.key).has_value());
    }
    CHECK(l2::decode(bytes + "x", v.key).error() == l2::decode_error::garbled);
    auto wrong = bytes;
    wrong[4] = '\x02';  // another version
    CHECK(l2::decode(wrong, v.key).error() == l2::decode_error::garbled);
    CHECK(l2::decode("{\"status\":200}", v.key).error() == l2::decode_error::garbled);
    // A length field blown up: refused, not allocated.
    auto huge = bytes;
    huge[5 + 7] = '\x7f';  // the key length's top byte
    CHECK_FALSE(l2::decode(huge, v.key).has_value());
}
