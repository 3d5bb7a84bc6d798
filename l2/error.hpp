#pragma once
// The l2 module's errors: one enum, one category (as Beast's http/error.hpp).
// A Redis "-ERR ..." answer is not one of these: it is a reply of kind error.

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace sidecache::l2 {

enum class error {
    timeout = 1,   // the command did not complete within op_timeout (or connect_timeout)
    unavailable,   // no connection: refused, reset, closed, AUTH/SELECT failed
    breaker_open,  // the breaker is open after repeated failures: Redis was not called
    protocol,      // the bytes read were not a valid RESP reply
    server,        // the server answered the connection's AUTH or SELECT with an error
};

// The category of l2::error codes, named "sidecache.l2".
const boost::system::error_category& category() noexcept;

inline boost::system::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), category()};
}

}  // namespace sidecache::l2

template <>
struct boost::system::is_error_code_enum<sidecache::l2::error> : std::true_type {};
