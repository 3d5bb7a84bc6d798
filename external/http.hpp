#pragma once
// HTTP(S) GETs to the external agent API over a keep-alive pool of at most
// external.max_connections connections: TLS with SNI and certificate plus
// host name verification (unless external.verify_tls is false), plain HTTP
// when the base URL says http. Every request carries `xi-api-key`.
// One GET is one try: it ends by `until`, whatever happens.

#include "conf/config.hpp"
#include "external/retry.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace sidecache::external {

struct http_answer {
    try_outcome outcome = try_outcome::connect_error;  // from the status when one arrived
    unsigned status = 0;                               // 0: no HTTP answer
    std::string body;
    std::optional<conf::duration> retry_after;  // a 429's Retry-After
};

class http_client {
public:
    using clock = std::chrono::steady_clock;

    // Connections are made on the io_context of the coroutine that needs
    // one, and lent again to that io_context's coroutines. Throws on an
    // unusable TLS setup.
    explicit http_client(const conf::external_config& config);
    ~http_client();
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;

    // GET <base path><target>. A pooled connection the server closed while
    // idle is replaced once, transparently, within the same `until`.
    boost::asio::awaitable<http_answer> get(std::string target, clock::time_point until);

    // Connections open (in use or idle) and idle.
    std::size_t open_connections() const;
    std::size_t idle_connections() const;
    // Closes the idle connections (shutdown).
    void close_idle();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace sidecache::external
