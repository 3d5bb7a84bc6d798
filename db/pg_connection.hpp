#pragma once
// The only door to libpq (pg_connection.cpp is the one file that calls it).
//
// pg_connection: one connection in non-blocking mode, driven by coroutines on
// one single-threaded io_context (see pool.hpp for why single-threaded). Its
// socket is watched with a posix::stream_descriptor on a dup() of it: libpq
// owns and closes its own descriptor, we close only our duplicate.
//
// pg_session: a blocking connection for the command line (migrate, refresh)
// and for tests; never used on an I/O thread.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sidecache::db {

using steady_clock = std::chrono::steady_clock;
using time_point = steady_clock::time_point;

// A value of a result cell: nullopt is SQL NULL.
using cell = std::optional<std::string>;

// One NOTIFY received on a LISTENing connection.
struct notification {
    std::string channel;
    std::string payload;
    int sender_pid = 0;  // the notifying backend
};

class pg_connection {
public:
    ~pg_connection();
    pg_connection(const pg_connection&) = delete;
    pg_connection& operator=(const pg_connection&) = delete;

    // Connects with PQconnectStart/PQconnectPoll. On failure the error is
    // connection_failed or timeout; *error_text (if given) gets libpq's message.
    static boost::asio::awaitable<boost::system::result<std::unique_ptr<pg_connection>>> connect(
        boost::asio::any_io_executor ex, std::string conninfo, time_point deadline,
        std::string* error_text = nullptr);

    // Runs SQL text without parameters (several statements allowed); the
    // first column of the first row of the last result (or nullopt).
    boost::asio::awaitable<boost::system::result<cell>> execute(std::string_view sql, time_point deadline);

    // PQsendPrepare: statement `name` with `n_params` text parameters.
    boost::asio::awaitable<boost::system::result<void>> prepare(const std::string& name,
                                                                const std::string& sql, int n_params,
                                                                time_point deadline);

    // PQsendQueryPrepared with text parameters; the first column of the first
    // row, nullopt when there is no row or it is NULL. On timeout the query is
    // cancelled (PQcancel, off this thread) and its results drained.
    boost::asio::awaitable<boost::system::result<cell>> query_prepared(const std::string& name,
                                                                       std::span<const std::string> params,
                                                                       time_point deadline);

    // After a LISTEN (execute()): the notifications received, waiting for the
    // socket until at least one arrives or `deadline` passes (then an empty
    // list). Those that arrived during earlier statements come at once.
    // connection_failed when the connection breaks or is abandon()ed.
    boost::asio::awaitable<boost::system::result<std::vector<notification>>> wait_notifications(
        time_point deadline);

    // The server process of this connection (pg_stat_activity.pid).
    int backend_pid() const noexcept;

    // Gives up the statement in flight (its waits end at once) and marks the
    // connection broken; for shutdown. Same thread as the coroutine using it.
    void abandon() noexcept;

    // False once the connection is broken: the owner replaces it.
    bool usable() const noexcept;
    // For an idle connection, before a statement is sent on it: true when the
    // server has closed it meanwhile (its backend terminated, a restart or a
    // failover), which marks it broken. A look at the socket, no round trip.
    bool peer_closed() noexcept;
    // libpq's last error message (connection or statement).
    const std::string& last_error() const noexcept;

private:
    struct impl;
    explicit pg_connection(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

class pg_session {
public:
    // Connects (blocking). Sets TimeZone to UTC and silences NOTICEs.
    static boost::system::result<pg_session> open(const std::string& conninfo,
                                                  std::string* error_text = nullptr);
    pg_session(pg_session&&) noexcept;
    pg_session& operator=(pg_session&&) noexcept;
    ~pg_session();

    // Runs SQL text (several statements allowed); the rows of the last result.
    boost::system::result<std::vector<std::vector<cell>>> execute(std::string_view sql);
    // One statement with text parameters; its rows.
    boost::system::result<std::vector<std::vector<cell>>> query(const std::string& sql,
                                                                std::span<const std::string> params);
    const std::string& last_error() const noexcept { return error_; }

private:
    explicit pg_session(void* conn) : conn_(conn) {}
    void* conn_ = nullptr;  // PGconn*
    std::string error_;
};

}  // namespace sidecache::db
