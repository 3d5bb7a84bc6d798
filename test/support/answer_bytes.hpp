#pragma once
// What a client would read of a cache::cache_answer: its buffers, joined.

#include "cache/response.hpp"

#include <string>

namespace sidecache::test {

inline std::string bytes_of(const cache::cache_answer& a) {
    std::string out;
    for (const auto& b : a.buffers) out.append(static_cast<const char*>(b.data()), b.size());
    return out;
}

// The body: what follows the head's blank line.
inline std::string body_of(const cache::cache_answer& a) {
    auto s = bytes_of(a);
    return s.substr(s.find("\r\n\r\n") + 4);
}

}  // namespace sidecache::test
