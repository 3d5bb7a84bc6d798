#pragma once
// Why a request's token was not verified: the request is then neither served
// from nor stored in the cache, and goes to the legacy backend unchanged.

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace sidecache::auth {

enum class error {
    missing = 1,    // no Authorization header
    not_bearer,     // not "Bearer <token>"
    malformed,      // not three dot-separated base64url parts
    bad_base64,     // a part is not strict base64url (no padding, canonical)
    bad_json,       // header or claims are not a JSON object
    bad_alg,        // alg is not HS256 (none, RS256, ...)
    bad_signature,  // the HMAC does not match
    no_exp,         // exp missing or not a number
    expired,        // now >= exp (no leeway: the legacy's rule)
    not_yet_valid,  // nbf in the future
    no_sub,         // sub missing, empty or not a string
    disabled,       // no secret configured: nothing is verified
};

const boost::system::error_category& category() noexcept;

inline boost::system::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), category()};
}

}  // namespace sidecache::auth

template <>
struct boost::system::is_error_code_enum<sidecache::auth::error> : std::true_type {};
