#pragma once
// The bytes of one answer kept in the second level (Redis): the full cache
// key it answers, the generations read when its fill began (docs/l2.md, the
// freshness argument), when it was computed and until when it is fresh, and
// the answer itself (status, stored headers, extra tags, body). Pure: no I/O.
// A value that is not exactly what encode() wrote, or that belongs to another
// key, does not decode: it is never served.

#include "cache/filler.hpp"

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sidecache::l2 {

struct stored_value {
    std::string key;                  // route '\n' user '\n' query (cache/key.hpp)
    std::string user_generation;      // <prefix>gen:u:<user> when the fill began
    std::string global_generation;    // <prefix>gen:all when the fill began
    std::int64_t computed_at_ms = 0;  // Unix time
    std::int64_t expires_at_ms = 0;   // Unix time: not served from then on
    unsigned status = 0;
    cache::header_list headers;
    std::vector<std::string> tags;  // extra tags, e.g. "agent:<id>"
    std::string body;
};

// Why a value read back is not served.
enum class decode_error {
    truncated = 1,  // shorter than its fields say
    garbled,        // not a value of this format: wrong magic, version or trailing bytes
    other_key,      // a well-formed value of another key
};

// Lets result<T, decode_error>::value() throw.
[[noreturn]] void throw_exception_from_error(decode_error e, const boost::source_location& loc);

std::string encode(const stored_value& v);

// `bytes` as a value of `expected_key`, else why not.
boost::system::result<stored_value, decode_error> decode(std::string_view bytes,
                                                         std::string_view expected_key);

}  // namespace sidecache::l2
