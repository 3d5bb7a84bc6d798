#pragma once
// Errors of the pass-through to the legacy backend (pool and forwarding), in
// the style of Beast's http/error.hpp: an enum, a category, make_error_code.

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace sidecache::upstream {

enum class error {
    refused = 1,       // connect failed: refused, unreachable, or name not resolved
    connect_timeout,   // no connection within upstream.connect_timeout
    response_timeout,  // no response head within upstream.response_timeout
    closed,            // the upstream closed or reset the connection before answering
    bad_response,      // the upstream's answer is not valid HTTP/1.1
    body_too_large,    // a buffered fetch's body exceeds its cap
    pool_exhausted,    // upstream.max_connections busy until the deadline
};

// The category of upstream::error codes, named "sidecache.upstream".
const boost::system::error_category& category() noexcept;

inline boost::system::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), category()};
}

}  // namespace sidecache::upstream

template <>
struct boost::system::is_error_code_enum<sidecache::upstream::error> : std::true_type {};
