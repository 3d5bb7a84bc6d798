#pragma once
// A keep-alive connection pool to the legacy backend (upstream.url, plain
// http). Thread-safe: any io thread may acquire; a leased connection belongs
// to one request at a time and goes back to the pool when released.
//
// A connection is opened on the executor of the coroutine that needs it and
// is lent again, first, to coroutines of the same io_context, so that with
// one io_context per thread a request and its upstream connection stay on
// one thread (as an nginx worker keeps its own keep-alive cache). Only when
// max_connections are open is an idle connection of another io_context lent.
// The caller's executor must not run two handlers at once (a single-threaded
// io_context, or a strand).

#include "conf/config.hpp"
#include "upstream/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace sidecache::upstream {

using clock = std::chrono::steady_clock;

struct connection;  // upstream/connection.hpp
struct pool_core;

// What a buffered fetch sends: a request without body.
struct request_head {
    boost::beast::http::verb method = boost::beast::http::verb::get;
    std::string target;                  // origin-form, "/api/x?y=1"
    boost::beast::http::fields headers;  // as the client sent them; hop-by-hop ones are dropped
};

// A whole upstream answer, for cache fills.
struct buffered_response {
    unsigned status = 0;
    boost::beast::http::fields headers;  // minus hop-by-hop fields
    std::string body;
};

struct pool_stats {
    std::uint64_t connects = 0;          // connections opened
    std::uint64_t connect_failures = 0;  // refused or timed out
    std::uint64_t reuses = 0;            // requests served on a pooled connection
    std::uint64_t stale_retries = 0;     // a pooled connection was found closed: retried on a fresh one
    std::uint64_t open = 0;              // connections now open (idle, leased or connecting)
    std::uint64_t idle = 0;              // of which idle in the pool
};

// Exclusive use of one upstream connection. Destroying it without release()
// closes the connection (its state is unknown).
class lease {
public:
    lease() = default;
    lease(lease&&) noexcept;
    lease& operator=(lease&&) noexcept;
    ~lease();

    connection& conn() const { return *conn_; }
    // Whether the connection served an earlier request (it may have been
    // closed by the upstream while idle).
    bool reused() const { return reused_; }
    // Gives the connection back: kept for reuse when `reusable` (the last
    // response was read whole and allows keep-alive), else closed.
    void release(bool reusable);

private:
    friend struct pool_core;
    lease(std::shared_ptr<pool_core> core, std::unique_ptr<connection> c, bool reused);

    std::shared_ptr<pool_core> core_;
    std::unique_ptr<connection> conn_;
    bool reused_ = false;
};

class pool {
public:
    explicit pool(conf::upstream_config cfg);
    ~pool();
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;

    // An idle pooled connection, else a new one if fewer than
    // max_connections are open, else waits for one until `deadline`.
    // With `probe`, an idle connection is first checked with a non-blocking
    // peek (one syscall) so a request that cannot be retried is not sent on
    // a connection the upstream already closed; a caller that retries stale
    // connections itself passes false.
    // Errors: refused, connect_timeout, pool_exhausted.
    boost::asio::awaitable<boost::system::result<lease>> acquire(clock::time_point deadline,
                                                                 bool probe = true);

    // An idle connection of the caller's io_context (`ex`: the caller's
    // executor) at once, or nothing, in which case acquire() waits or
    // connects. Not a coroutine: the usual case costs no frame.
    std::optional<lease> try_acquire(const boost::asio::any_io_executor& ex, bool probe = true);

    // Sends `req` (no body) and reads the whole answer, body at most
    // `body_cap` bytes. The response head must arrive before `deadline`.
    // Retried once on a fresh connection if a pooled one was stale.
    // Errors: those of acquire, response_timeout, closed, bad_response, body_too_large.
    boost::asio::awaitable<boost::system::result<buffered_response>> fetch(
        request_head req, clock::time_point deadline, std::size_t body_cap = 8 * 1024 * 1024);

    // The settings in effect: those it started with, or a reload's.
    const conf::upstream_config& config() const;
    // A reload: max_connections, max_idle_connections, connect_timeout,
    // response_timeout and idle_timeout from `next` on (the URL stays); `next`
    // outlives the pool (conf::live_config keeps it). Any thread.
    void reconfigure(const conf::upstream_config& next);
    pool_stats stats() const;
    void note_stale_retry();

private:
    std::shared_ptr<pool_core> core_;
};

}  // namespace sidecache::upstream
