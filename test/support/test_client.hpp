#pragma once
// A blocking HTTP client for tests that need to see exact bytes: raw writes
// (pipelining, smuggling attempts), one response at a time, and whether the
// server closed. Every read gives up after a receive timeout (no hang).

#include "test_upstream.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sidecache::test {

struct client_response {
    unsigned status = 0;
    header_list headers;
    std::string body;
    bool chunked = false;  // the body came chunked
    bool keep_alive = true;

    std::string header(std::string_view name) const { return header_value(headers, name); }
};

class test_client {
public:
    explicit test_client(std::uint16_t port,
                         std::chrono::milliseconds receive_timeout = std::chrono::seconds(30));
    ~test_client();

    void send(std::string_view bytes);
    // One response; nullopt if the connection closed or timed out first.
    // `head` for the answer to a HEAD request (no body follows).
    std::optional<client_response> read_response(bool head = false);
    // True if the server closed the connection (EOF or reset) before the
    // receive timeout, any bytes still unread being dropped.
    bool closed_by_peer();
    // The socket, for a writer thread beside read_response() (::send on it;
    // the reads stay with this object).
    int native_handle();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// "GET <target> HTTP/1.1" with Host and `extra` header lines ("A: b\r\n").
std::string get_request(std::string_view target, std::string_view extra = {});

}  // namespace sidecache::test
