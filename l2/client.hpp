#pragma once
// A small Redis client driven by Asio: a few connections per io_context,
// each command bounded by a timeout, and a breaker that stops calling a Redis
// that keeps failing. Hiredis (its RESP reader and command formatter) stays
// in client.cpp.

#include "l2/error.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sidecache::conf {
struct redis_url;
struct l2_config;
}  // namespace sidecache::conf

namespace boost::asio {
class io_context;
}

namespace sidecache::l2 {

// One RESP reply. A server "-ERR ..." answer is a reply of kind error (its
// text in str), not an error code.
struct reply {
    enum class kind { nil, integer, string, status, array, error } type = kind::nil;
    long long integer = 0;
    std::string str;
    std::vector<reply> elements;
};

struct client_options {
    std::string host;
    std::uint16_t port = 6379;
    std::string user, password;
    int db = 0;
    std::size_t connections = 2;
    std::chrono::milliseconds op_timeout{20};
    std::chrono::milliseconds connect_timeout{200};
    int breaker_failures = 5;
    std::chrono::milliseconds breaker_open_for{1000};
};

// A redis:// URL as conf::parse_redis_url split it; the rest at its defaults.
client_options options_from(const conf::redis_url& url);
// The l2 section: its URL and its connections, timeouts and breaker.
client_options options_from(const conf::l2_config& cfg);

// One per io_context (io thread); not thread-safe; completes on that io_context.
// Destroy it on that thread once its commands have completed (or its
// io_context has stopped running them), before the io_context.
class client {
public:
    client(boost::asio::io_context& ioc, client_options opts);
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    // One command (args already split: {"MGET", k1, k2}); completes within
    // op_timeout, never throws for I/O.
    boost::asio::awaitable<boost::system::result<reply>> command(std::vector<std::string> args);
    bool available() const;  // false while the breaker is open
    void close();            // at shutdown

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace sidecache::l2
