// JWT verification: HS256 only, strict base64url, exp/sub required, and the
// bounded cache of verified tokens.
#include "auth/verifier.hpp"

#include <catch2/catch.hpp>

using namespace sidecache;
using namespace std::chrono_literals;
using auth::error;

namespace {

struct fixture {
    conf::auth_config config;
    sync::manual_time_source clock;  // 2026-11-28T09:00:00Z
    auth::verifier verifier{config, clock};
    std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                             sync::manual_time_source{}.system_now().time_since_epoch())
                             .count();

    fixture() { config.jwt_secret = "s3cret"; }

    std::string bearer(const std::string& claims, const std::string& secret = "s3cret") {
        return "Bearer " + auth::sign_hs256(claims, secret);
    }
    std::string claims(const std::string& sub, std::int64_t exp_in) {
        return R"({"sub":")" + sub + R"(","exp":)" + std::to_string(now_s + exp_in) + "}";
    }
    boost::system::error_code error_of(const std::string& header) {
        auto r = verifier.verify(header);
        return r ? boost::system::error_code{} : r.error();
    }
};

}  // namespace

TEST_CASE("verifier: a valid HS256 token gives its sub", "[unit]") {
    fixture f;
    auto r = f.verifier.verify(f.bearer(f.claims("7d1c-user", 60)));
    REQUIRE(r);
    CHECK((*r)->user_id == "7d1c-user");
    CHECK(f.verifier.verify("bearer " + auth::sign_hs256(f.claims("u", 60), "s3cret")));
}

TEST_CASE("verifier: a uuid sub is keyed in lower case, any other sub as written", "[unit]") {
    fixture f;
    auto upper = f.verifier.verify(f.bearer(f.claims("0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D", 60)));
    REQUIRE(upper);
    CHECK((*upper)->user_id == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
    auto other = f.verifier.verify(f.bearer(f.claims("User-ABC", 60)));
    REQUIRE(other);
    CHECK((*other)->user_id == "User-ABC");
    // 36 characters but not 8-4-4-4-12: as written.
    auto almost = f.verifier.verify(f.bearer(f.claims("0A1B2C3D04E5F-4A6B-8C7D-9E0F1A2B3C4D", 60)));
    REQUIRE(almost);
    CHECK((*almost)->user_id == "0A1B2C3D04E5F-4A6B-8C7D-9E0F1A2B3C4D");
}

TEST_CASE("verifier: the jwt.io HS256 vector is signed and its signature accepted", "[unit]") {
    // Known-good vector: header {"alg":"HS256","typ":"JWT"}, claims
    // {"sub":"1234567890","name":"John Doe","iat":1516239022} + exp, secret
    // "your-256-bit-secret" (jwt.io). The signature was computed with
    // Python's hmac independently of this code.
    fixture f;
    f.config.jwt_secret = "your-256-bit-secret";
    auto token =
        auth::sign_hs256(R"({"sub":"1234567890","name":"John Doe","iat":1516239022})", "your-256-bit-secret");
    CHECK(token ==
          "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9l"
          "IiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
    CHECK(f.error_of("Bearer " + token) == error::no_exp);  // valid signature, no exp
}

TEST_CASE("verifier: rejections", "[unit]") {
    fixture f;
    auto good = auth::sign_hs256(f.claims("u1", 60), "s3cret");
    auto dot2 = good.rfind('.');

    CHECK(f.error_of("") == error::missing);
    CHECK(f.error_of("Basic dXNlcjpwYXNz") == error::not_bearer);
    CHECK(f.error_of("Bearer abc") == error::malformed);
    CHECK(f.error_of("Bearer a.b.c.d") == error::malformed);
    CHECK(f.error_of(f.bearer(f.claims("u1", 60), "other")) == error::bad_signature);
    CHECK(f.error_of("Bearer " + good.substr(0, dot2 + 1) + "AAAA") == error::bad_signature);
    CHECK(f.error_of("Bearer " + good + "=") == error::bad_base64);  // padding
    CHECK(f.error_of("Bearer " + good.substr(0, dot2) + ".+/==") == error::bad_base64);
    CHECK(f.error_of(f.bearer(f.claims("u1", -1))) == error::expired);
    CHECK(f.error_of(f.bearer(f.claims("u1", 0))) == error::expired);  // now >= exp
    CHECK(f.error_of(f.bearer(f.claims("", 60))) == error::no_sub);
    CHECK(f.error_of(f.bearer(R"({"exp":)" + std::to_string(f.now_s + 60) + "}")) == error::no_sub);
    CHECK(f.error_of(f.bearer(R"({"sub":"u1","exp":"tomorrow"})")) == error::no_exp);
    CHECK(f.error_of(f.bearer(R"({"sub":"u1","exp":)")) == error::bad_json);
    CHECK(f.error_of(f.bearer(R"(["u1"])")) == error::bad_json);

    SECTION("alg none and other algorithms") {
        auto header = GENERATE(std::string(R"({"alg":"none","typ":"JWT"})"),
                               std::string(R"({"alg":"HS512"})"), std::string(R"({"alg":"RS256"})"),
                               std::string(R"({"typ":"JWT"})"), std::string(R"({"alg":"hs256"})"));
        auto token = auth::sign_hs256(header, f.claims("u1", 60), "s3cret");
        CHECK(f.error_of("Bearer " + token) == error::bad_alg);
        // alg none with an empty signature
        auto unsigned_token = token.substr(0, token.rfind('.') + 1);
        CHECK(f.error_of("Bearer " + unsigned_token) == error::malformed);
    }
    SECTION("no secret configured: nothing is verified") {
        f.config.jwt_secret.clear();
        CHECK(f.error_of("Bearer " + good) == error::disabled);
    }
}

// Found by test/fuzz/jwt.cpp: an exp past the clock's range (int64
// nanoseconds, year 2262) overflowed the conversion, undefined behaviour that
// read a year-2286 exp as the far past: a valid token was refused as expired.
TEST_CASE("verifier: an exp or nbf beyond the clock's range is clamped, not overflowed", "[unit]") {
    fixture f;
    f.config.leeway = 1h;
    auto far = f.verifier.verify(f.bearer(R"({"sub":"u1","exp":10000000000})"));  // year 2286
    REQUIRE(far);
    CHECK((*far)->user_id == "u1");
    CHECK(f.verifier.verify(f.bearer(R"({"sub":"u2","exp":41024448064320000})")));
    CHECK(f.verifier.verify(f.bearer(R"({"sub":"u3","exp":1e300,"nbf":-1e300})")));
    CHECK(f.error_of(f.bearer(R"({"sub":"u4","exp":-1e300})")) == error::expired);
    CHECK(f.error_of(f.bearer(R"({"sub":"u5","exp":1e300,"nbf":1e300})")) == error::not_yet_valid);
}

// Issue 14: the legacy rejects a token at its exp with no tolerance, so a
// leeway on exp would serve cached dashboards to tokens the legacy refuses.
// The leeway covers clock skew on nbf only.
TEST_CASE("verifier: leeway tolerates nbf skew, never an expired token", "[unit]") {
    fixture f;
    f.config.leeway = 5s;
    CHECK(f.error_of(f.bearer(f.claims("u1", -3))) == error::expired);
    CHECK(f.error_of(f.bearer(f.claims("u1", 0))) == error::expired);
    CHECK(f.verifier.verify(f.bearer(f.claims("u1", 1))));
    auto with_nbf = [&](std::int64_t nbf_in) {
        return R"({"sub":"u2","exp":)" + std::to_string(f.now_s + 60) + R"(,"nbf":)" +
               std::to_string(f.now_s + nbf_in) + "}";
    };
    CHECK(f.verifier.verify(f.bearer(with_nbf(3))));
    CHECK(f.error_of(f.bearer(with_nbf(6))) == error::not_yet_valid);
    // A token verified (and cached) while valid stops at its exp exactly.
    auto t = f.bearer(f.claims("u3", 10));
    REQUIRE(f.verifier.verify(t));
    f.clock.advance(10s);
    CHECK(f.error_of(t) == error::expired);
}

TEST_CASE("verifier: strict base64url", "[unit]") {
    CHECK(auth::base64url_decode("aGk") == "hi");
    CHECK(auth::base64url_decode("aGl-_w") == std::string("hi~\xff", 4));
    CHECK_FALSE(auth::base64url_decode("aGk="));  // padding
    CHECK_FALSE(auth::base64url_decode("aGl"));   // non-zero unused bits
    CHECK_FALSE(auth::base64url_decode("aGk+"));  // '+' is base64, not base64url
    CHECK_FALSE(auth::base64url_decode("a"));     // impossible length
    CHECK_FALSE(auth::base64url_decode("aG k"));
    for (std::string s : {"", "a", "ab", "abc", "abcd", "\xff\xfe\x00"})
        CHECK(auth::base64url_decode(auth::base64url_encode(s)) == s);
}

TEST_CASE("verifier: verified tokens are cached, bounded, never past exp", "[unit]") {
    fixture f;
    f.config.token_cache_entries = 3;
    auto t1 = f.bearer(f.claims("u1", 10));
    REQUIRE(f.verifier.verify(t1));
    CHECK(f.verifier.cached_tokens() == 1);
    auto a = f.verifier.verify(t1);
    auto b = f.verifier.verify(t1);
    REQUIRE(a);
    CHECK(a->get() == b->get());  // the same cached identity

    for (int i = 2; i <= 6; ++i) REQUIRE(f.verifier.verify(f.bearer(f.claims("u" + std::to_string(i), 100))));
    CHECK(f.verifier.cached_tokens() <= 3);

    auto t7 = f.bearer(f.claims("u7", 10));
    REQUIRE(f.verifier.verify(t7));
    f.clock.advance(10s);
    CHECK(f.error_of(t7) == error::expired);  // cached, but past exp
}

// Found by bench/memory: with more users than token_cache_entries, every new
// token swept the whole cache for expired ones under the verifier's mutex.
TEST_CASE("verifier: a full token cache makes room in constant time, sweeping for expired tokens rarely",
          "[unit]") {
    fixture f;
    f.config.token_cache_entries = 100;
    for (int i = 0; i < 2'000; ++i)  // 20 times the capacity, none expired
        REQUIRE(f.verifier.verify(f.bearer(f.claims("u" + std::to_string(i), 100))));
    CHECK(f.verifier.cached_tokens() == 100);
    // One sweep per 25 insertions into the full cache at most, not one each.
    CHECK(f.verifier.cache_sweeps() <= (2'000 - 100) / 25 + 1);
    // Expired tokens still go in a sweep: 100 short-lived ones (most of them
    // stay, each evicting a random other), then past their exp, 30 more
    // insertions, among which a sweep: the cache is no longer full.
    for (int i = 0; i < 100; ++i) REQUIRE(f.verifier.verify(f.bearer(f.claims("s" + std::to_string(i), 10))));
    f.clock.advance(10s);
    const auto sweeps = f.verifier.cache_sweeps();
    for (int i = 0; i < 30; ++i) REQUIRE(f.verifier.verify(f.bearer(f.claims("n" + std::to_string(i), 100))));
    CHECK(f.verifier.cache_sweeps() > sweeps);
    CHECK(f.verifier.cached_tokens() < 100);
}

// Found in review of the fuzz targets: the cache key joins route, user and
// query with '\n', so a subject holding one could spell another user's key.
TEST_CASE("verifier: a subject with a control character is not verified", "[unit]") {
    fixture f;
    CHECK(f.error_of(f.bearer(f.claims("alice\\nq=1", 60))) == error::no_sub);
    CHECK(f.error_of(f.bearer(f.claims("alice\\u0000", 60))) == error::no_sub);
    CHECK(f.error_of(f.bearer(f.claims("alice\\u007f", 60))) == error::no_sub);
    CHECK(f.verifier.verify(f.bearer(f.claims("alice \\u00e9", 60))));
}
