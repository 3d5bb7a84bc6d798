#pragma once
// A stored response: one immutable shared buffer holding the key, the
// serialized head ("HTTP/1.1 200 OK\r\n" + stored headers, each ending in
// CRLF, without the blank line) and the body. A hit writes head, a small
// per-response header block, and body as three buffers: no copy.

#include "cache/filler.hpp"

#include <boost/asio/buffer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace sidecache::cache {

struct response_bytes {
    std::shared_ptr<const char[]> data;
    std::uint32_t key_size = 0;
    std::uint32_t head_size = 0;
    std::uint32_t body_size = 0;
    unsigned status = 0;

    std::string_view key() const { return {data.get(), key_size}; }
    std::string_view head() const { return {data.get() + key_size, head_size}; }
    std::string_view body() const { return {data.get() + key_size + head_size, body_size}; }
    std::size_t size() const { return std::size_t{key_size} + head_size + body_size; }
};

// Serializes an answer. Hop-by-hop and per-response headers (Connection,
// Keep-Alive, Transfer-Encoding, Content-Length, Age, Cache-Status, X-Cache,
// ...) are dropped; Content-Length is written from the body.
response_bytes make_response_bytes(std::string_view key, unsigned status, const header_list& headers,
                                   std::string_view body);

// The copy of `response` that the cache keeps and serves to later requests:
// where the body carries the contract's `"cacheInfo": {"cached": false`,
// it says `true ` instead (same length: Content-Length stands), since those
// answers are served from a cache. The fill's own answer keeps `false`.
// Without the marker, `response` itself (no copy).
response_bytes as_served_from_cache(const response_bytes& response);

// The error envelope {"success":false,"error":{"code":...,"message":...}}.
response_bytes make_error_response(unsigned status, std::string_view code, std::string_view message);

// How an answer was produced: picks Cache-Status and X-Cache.
enum class answer_kind {
    hit,             // fresh from the cache
    hit_l2,          // fresh from the second level (Redis), shared by the fleet (docs/l2.md)
    stale,           // stale, served while it is refreshed in the background
    stale_if_error,  // stale, served because the fill failed
    stale_timeout,   // stale, served because the wait for the fill timed out or was full
    miss_stored,     // this request's fill, stored
    miss,            // this request's fill, not stored
    collapsed,       // the fill of another request of the same key
    timeout,         // 503: no answer within the route's wait_timeout, nothing stale
    overloaded,      // 503: too many waiters on one key, nothing stale
    fill_error,      // 502: the fill failed without an answer, nothing stale
    backed_off,      // the key's last fill failed and its backoff runs: that failure again
};

std::string_view cache_status(answer_kind kind);  // "sidecache; hit"
std::string_view x_cache(answer_kind kind);       // "HIT", "MISS", "STALE"
std::string_view to_string(answer_kind kind);     // its name: "hit", "stale_if_error", ...

// What the proxy writes: `buffers` stay valid while `owner` lives.
struct cache_answer {
    std::shared_ptr<const void> owner;
    std::vector<boost::asio::const_buffer> buffers;
    bool keep_alive = true;
    unsigned status = 0;
    answer_kind kind = answer_kind::miss;
};

// Adds Age, Cache-Status, X-Cache and Connection to a stored response:
// one allocation for the owner (holding the header block), one for the
// buffer vector; the body is not copied.
cache_answer render(const response_bytes& response, answer_kind kind, std::chrono::seconds age,
                    bool keep_alive);

// The age of an answer computed at `computed_at`, never negative.
std::chrono::seconds age_of(std::chrono::system_clock::time_point computed_at,
                            std::chrono::system_clock::time_point now);

}  // namespace sidecache::cache
