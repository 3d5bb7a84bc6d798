#pragma once
// Why the proxy refused or ended a client exchange (Beast http/error.hpp style).

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace sidecache::proxy {

enum class error {
    header_too_large = 1,  // request head larger than server.max_header_bytes: 431
    body_too_large,        // request body larger than server.max_body_bytes: 413
    header_timeout,        // request head not received within server.header_timeout: 408
    bad_request,           // malformed request: 400
    ambiguous_framing,  // Content-Length with Transfer-Encoding, or a coding other than a final chunked: 400
    upstream_unavailable,  // the upstream refused, reset or closed: 502
    upstream_timeout,      // no upstream answer within upstream.response_timeout: 504
};

// The category of proxy::error codes, named "sidecache.proxy".
const boost::system::error_category& category() noexcept;

inline boost::system::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), category()};
}

}  // namespace sidecache::proxy

template <>
struct boost::system::is_error_code_enum<sidecache::proxy::error> : std::true_type {};
