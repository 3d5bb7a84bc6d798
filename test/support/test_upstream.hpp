#pragma once
// A scripted HTTP/1.1 server for tests: it runs on its own thread on
// 127.0.0.1:0, records every request, counts accepted sockets, and answers
// with what the handler returns (optionally late, chunked, or raw bytes).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sidecache::test {

using header_list = std::vector<std::pair<std::string, std::string>>;

// The first value of header `name` (case-insensitive), "" when absent.
std::string header_value(const header_list& headers, std::string_view name);
bool has_header(const header_list& headers, std::string_view name);

struct recorded_request {
    std::string method;
    std::string target;
    unsigned version = 11;
    header_list headers;  // as received, in order
    std::string body;
    bool chunked = false;               // the body came chunked
    std::size_t connection = 0;         // which accepted socket (1, 2, ...)
    std::size_t nth_on_connection = 0;  // 1 for the first request on its socket

    std::string header(std::string_view name) const { return header_value(headers, name); }
};

struct scripted_response {
    unsigned status = 200;
    header_list headers;  // written as given; framing headers are added unless raw
    std::string body;
    std::chrono::milliseconds delay{0};  // wait before writing anything
    bool chunked = false;                // Transfer-Encoding: chunked, chunk_size bytes each
    std::size_t chunk_size = 64 * 1024;
    bool no_length = false;          // neither Content-Length nor chunked: the body ends at the close
    bool close = false;              // close the connection after this response
    std::optional<std::string> raw;  // written verbatim instead of the above
};

class test_upstream {
public:
    using handler = std::function<scripted_response(const recorded_request&)>;

    explicit test_upstream(handler h);
    ~test_upstream();
    test_upstream(const test_upstream&) = delete;
    test_upstream& operator=(const test_upstream&) = delete;

    std::uint16_t port() const;
    std::size_t accepted() const;  // sockets accepted so far
    std::size_t requests() const;  // requests read so far
    std::vector<recorded_request> received() const;
    recorded_request last() const;

    // Closes every connection now waiting for a request, as an upstream's own
    // keep-alive timeout would; returns how many. Waits until done.
    std::size_t close_idle();

    // Waits until `n` requests were read, or `timeout`. True if they were.
    bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace sidecache::test
