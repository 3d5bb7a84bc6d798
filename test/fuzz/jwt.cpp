// Fuzz target: identity verification (auth/verifier) past the signature.
// The input is "<header JSON>\n<claims JSON>" (no newline: the claims, under
// the usual header), signed with the secret the verifier knows, so the
// fuzzer reaches what only a validly signed token reaches: the header's
// alg, the claims' exp, nbf and sub. The input is also tried as a token as
// is, and through the strict base64url decoder.
//
// Checks beyond the sanitizers: a verified token names a non-empty user; a
// decoded base64url string encodes back to the same text (the decoder is
// strict: one spelling per byte string).
#include "auth/verifier.hpp"
#include "sync/time_source.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace sidecache;

namespace {

void fail(const char* what) {
    std::fprintf(stderr, "jwt: %s\n", what);
    std::abort();
}

void verify(const auth::verifier& identity, const std::string& authorization) {
    auto user = identity.verify(authorization);
    if (user && (*user)->user_id.empty()) fail("a verified token with an empty user");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    conf::auth_config config;
    config.jwt_secret = "fuzz-secret";
    config.leeway = std::chrono::seconds(30);
    sync::manual_time_source clock;  // 2026-11-28T09:00:00Z
    auth::verifier identity{config, clock};

    const auto newline = input.find('\n');
    const auto token = newline == std::string_view::npos
                           ? auth::sign_hs256(input, config.jwt_secret)
                           : auth::sign_hs256(input.substr(0, newline), input.substr(newline + 1), config.jwt_secret);
    verify(identity, "Bearer " + token);
    verify(identity, "Bearer " + token);  // from the token cache
    verify(identity, "Bearer " + std::string(input));

    if (auto decoded = auth::base64url_decode(input)) {
        if (auth::base64url_encode(*decoded) != input) fail("base64url: two spellings of one byte string");
    }
    return 0;
}
