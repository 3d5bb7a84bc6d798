// The one file that calls libpq. Everything async here runs on one
// single-threaded io_context (pool.cpp). Asio watches a duplicate of libpq's
// socket (watch_socket says why). Asio registers descriptors
// edge-triggered, so a readiness edge that arrived between libpq's EAGAIN and
// our async_wait could be consumed by another reactor thread and lost; with a
// single thread the wait is always queued before the reactor runs again.
#include "db/pg_connection.hpp"

#include "db/error.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <libpq-fe.h>

#include <chrono>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <utility>

namespace sidecache::db {

namespace net = boost::asio;
using boost::system::result;
using net::awaitable;
using namespace net::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
// After a deadline, how long a cancelled query may take to wind down before
// its connection is given up as broken.
constexpr auto cancel_grace = std::chrono::seconds(2);

void ignore_notice(void*, const PGresult*) {}

// PQcancel blocks (it opens a connection to the server): it runs here, never
// on the db thread.
net::thread_pool& cancel_threads() {
    static net::thread_pool threads(1);
    return threads;
}

std::string trimmed(const char* msg) {
    std::string s = msg ? msg : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

}  // namespace

struct pg_connection::impl {
    impl(net::any_io_executor ex) : sd(ex), timer(ex) {}
    ~impl() {
        boost::system::error_code ec;
        sd.close(ec);  // our duplicate (watch_socket), never libpq's socket
        if (conn) PQfinish(conn);
    }

    PGconn* conn = nullptr;
    net::posix::stream_descriptor sd;
    net::steady_timer timer;
    std::string error;
    bool broken = false;

    // Watches the current PQsocket (which may change at each connect step)
    // through a dup() of it that we own. libpq closes its own descriptor when
    // it finds the connection broken (inside PQconsumeInput, say), and another
    // thread may get that number at once: watching libpq's number, our
    // later epoll_ctl would act on that thread's file. A duplicate cannot be
    // reused while we hold it; it refers to the same socket, so readiness is
    // the same.
    bool watch_socket() {
        boost::system::error_code ec;
        sd.close(ec);
        int fd = PQsocket(conn);
        if (fd < 0) return false;
        int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (own < 0) return false;
        sd.assign(own, ec);
        if (ec) ::close(own);
        return !ec;
    }

    enum class waited { ready, timed_out, failed };

    awaitable<waited> wait(net::posix::descriptor_base::wait_type what, time_point deadline) {
        if (steady_clock::now() >= deadline) co_return waited::timed_out;
        timer.expires_at(deadline);
        auto r = co_await (sd.async_wait(what, use_tuple) || timer.async_wait(use_tuple));
        if (broken) co_return waited::failed;  // abandon()ed
        if (r.index() == 1) co_return waited::timed_out;
        auto [ec] = std::get<0>(r);
        co_return ec ? waited::failed : waited::ready;
    }

    void fail(std::string what) {
        error = std::move(what);
        if (PQstatus(conn) == CONNECTION_BAD) broken = true;
    }

    // Sends what libpq buffered, then collects every result of the statement.
    // Returns the first column of the first row of the last tuples result.
    awaitable<result<cell>> finish(time_point deadline) {
        for (;;) {
            int f = PQflush(conn);
            if (f == 0) break;
            if (f < 0) {
                broken = true;
                error = trimmed(PQerrorMessage(conn));
                co_return error::connection_failed;
            }
            auto w = co_await wait(net::posix::descriptor_base::wait_write, deadline);
            if (w == waited::timed_out) co_return co_await cancel_and_drain();
            if (w == waited::failed) {
                broken = true;
                co_return error::connection_failed;
            }
        }
        co_return co_await collect(deadline, false);
    }

    awaitable<result<cell>> collect(time_point deadline, bool draining) {
        cell value;
        bool failed = false;
        for (;;) {
            while (PQisBusy(conn)) {
                auto w = co_await wait(net::posix::descriptor_base::wait_read, deadline);
                if (w == waited::timed_out) {
                    if (draining) {
                        broken = true;  // the cancel did not stop it in time: give up
                        co_return error::timeout;
                    }
                    co_return co_await cancel_and_drain();
                }
                if (w == waited::failed || !PQconsumeInput(conn)) {
                    broken = true;
                    error = trimmed(PQerrorMessage(conn));
                    co_return error::connection_failed;
                }
            }
            PGresult* res = PQgetResult(conn);
            if (!res) break;
            switch (PQresultStatus(res)) {
            case PGRES_TUPLES_OK:
                value = (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
                            ? cell(std::string(PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0)))
                            : cell();
                break;
            case PGRES_COMMAND_OK:
            case PGRES_EMPTY_QUERY:
                break;
            default:
                failed = true;
                error = trimmed(PQresultErrorMessage(res));
                break;
            }
            PQclear(res);
        }
        if (PQstatus(conn) == CONNECTION_BAD) {
            broken = true;
            error = trimmed(PQerrorMessage(conn));
            co_return error::connection_failed;
        }
        if (draining) co_return error::timeout;
        if (failed) co_return error::query_failed;
        co_return value;
    }

    // The deadline passed with the statement still running: ask the server to
    // cancel it (PQcancel off this thread), then read its results to the end
    // so the connection is clean for the next statement, within a grace.
    awaitable<result<cell>> cancel_and_drain() {
        if (PGcancel* c = PQgetCancel(conn)) {
            net::post(cancel_threads(), [c] {
                char buf[256];
                PQcancel(c, buf, sizeof buf);
                PQfreeCancel(c);
            });
        }
        error = "statement cancelled: deadline exceeded";
        co_return co_await collect(steady_clock::now() + cancel_grace, true);
    }
};

pg_connection::pg_connection(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
pg_connection::~pg_connection() = default;

void pg_connection::abandon() noexcept {
    impl_->broken = true;
    boost::system::error_code ec;
    impl_->sd.cancel(ec);
    impl_->timer.cancel();
}

int pg_connection::backend_pid() const noexcept {
    return PQbackendPID(impl_->conn);
}

bool pg_connection::usable() const noexcept {
    return !impl_->broken;
}

bool pg_connection::peer_closed() noexcept {
    auto& m = *impl_;
    if (m.broken) return true;
    // The server sends nothing unasked to an idle connection that does not
    // LISTEN but its farewell (57P01 "terminating connection due to
    // administrator command") before it closes: the close itself (POLLRDHUP)
    // is what tells, not readable bytes (a ParameterStatus after a reload).
    pollfd p{};
    p.fd = m.sd.is_open() ? m.sd.native_handle() : -1;
    p.events = POLLIN | POLLRDHUP;
    if (p.fd < 0 || ::poll(&p, 1, 0) < 0) return false;
    if ((p.revents & (POLLRDHUP | POLLHUP | POLLERR)) == 0) return false;
    m.broken = true;
    m.error = "the server closed the connection while it was idle";
    return true;
}
const std::string& pg_connection::last_error() const noexcept {
    return impl_->error;
}

awaitable<result<std::unique_ptr<pg_connection>>> pg_connection::connect(net::any_io_executor ex,
                                                                         std::string conninfo,
                                                                         time_point deadline,
                                                                         std::string* error_text) {
    auto p = std::make_unique<impl>(ex);
    auto failed = [&](error e, std::string msg) -> result<std::unique_ptr<pg_connection>> {
        if (error_text) *error_text = std::move(msg);
        return e;
    };
    p->conn = PQconnectStart(conninfo.c_str());
    if (!p->conn) co_return failed(error::connection_failed, "out of memory");
    if (PQstatus(p->conn) == CONNECTION_BAD)
        co_return failed(error::connection_failed, trimmed(PQerrorMessage(p->conn)));
    PQsetNoticeReceiver(p->conn, ignore_notice, nullptr);

    // As the libpq manual says: behave as if PQconnectPoll had last answered
    // PGRES_POLLING_WRITING, and re-read PQsocket after every step.
    PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
    for (;;) {
        if (poll == PGRES_POLLING_OK) break;
        if (poll == PGRES_POLLING_FAILED)
            co_return failed(error::connection_failed, trimmed(PQerrorMessage(p->conn)));
        if (!p->watch_socket())
            co_return failed(error::connection_failed, "no socket: " + trimmed(PQerrorMessage(p->conn)));
        auto what = poll == PGRES_POLLING_READING ? net::posix::descriptor_base::wait_read
                                                  : net::posix::descriptor_base::wait_write;
        auto w = co_await p->wait(what, deadline);
        if (w == impl::waited::timed_out) co_return failed(error::timeout, "connect timed out");
        if (w == impl::waited::failed) co_return failed(error::connection_failed, "socket wait failed");
        poll = PQconnectPoll(p->conn);
    }
    if (!p->watch_socket() || PQsetnonblocking(p->conn, 1) != 0)
        co_return failed(error::connection_failed, trimmed(PQerrorMessage(p->conn)));
    co_return std::unique_ptr<pg_connection>(new pg_connection(std::move(p)));
}

awaitable<result<cell>> pg_connection::execute(std::string_view sql, time_point deadline) {
    std::string text(sql);
    if (!PQsendQuery(impl_->conn, text.c_str())) {
        impl_->fail(trimmed(PQerrorMessage(impl_->conn)));
        co_return impl_->broken ? error::connection_failed : error::query_failed;
    }
    co_return co_await impl_->finish(deadline);
}

awaitable<result<void>> pg_connection::prepare(const std::string& name, const std::string& sql, int n_params,
                                               time_point deadline) {
    if (!PQsendPrepare(impl_->conn, name.c_str(), sql.c_str(), n_params, nullptr)) {
        impl_->fail(trimmed(PQerrorMessage(impl_->conn)));
        co_return impl_->broken ? error::connection_failed : error::query_failed;
    }
    auto r = co_await impl_->finish(deadline);
    if (!r) co_return r.error();
    co_return result<void>();
}

awaitable<result<cell>> pg_connection::query_prepared(const std::string& name,
                                                      std::span<const std::string> params,
                                                      time_point deadline) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p.c_str());
    if (!PQsendQueryPrepared(impl_->conn, name.c_str(), static_cast<int>(values.size()), values.data(),
                             nullptr, nullptr, 0)) {
        impl_->fail(trimmed(PQerrorMessage(impl_->conn)));
        co_return impl_->broken ? error::connection_failed : error::query_failed;
    }
    co_return co_await impl_->finish(deadline);
}

awaitable<result<std::vector<notification>>> pg_connection::wait_notifications(time_point deadline) {
    auto& m = *impl_;
    std::vector<notification> out;
    for (;;) {
        if (m.broken) co_return error::connection_failed;
        while (PGnotify* n = PQnotifies(m.conn)) {
            out.push_back({n->relname ? n->relname : "", n->extra ? n->extra : "", n->be_pid});
            PQfreemem(n);
        }
        if (!out.empty()) co_return out;
        auto w = co_await m.wait(net::posix::descriptor_base::wait_read, deadline);
        if (w == impl::waited::timed_out) co_return out;
        // A terminated backend: the socket turns readable, PQconsumeInput reads
        // the FATAL message and EOF, and the connection is bad.
        if (w == impl::waited::failed || !PQconsumeInput(m.conn) || PQstatus(m.conn) == CONNECTION_BAD) {
            m.broken = true;
            if (m.conn) m.error = trimmed(PQerrorMessage(m.conn));
            co_return error::connection_failed;
        }
    }
}

// ---- pg_session: blocking, for the command line and tests ----

namespace {

result<std::vector<std::vector<cell>>> rows_of(PGresult* res, std::string& error) {
    std::vector<std::vector<cell>> rows;
    auto st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY) {
        error = trimmed(PQresultErrorMessage(res));
        PQclear(res);
        return error::query_failed;
    }
    for (int r = 0; r < PQntuples(res); ++r) {
        auto& row = rows.emplace_back();
        for (int c = 0; c < PQnfields(res); ++c)
            row.push_back(PQgetisnull(res, r, c)
                              ? cell()
                              : cell(std::string(PQgetvalue(res, r, c), PQgetlength(res, r, c))));
    }
    PQclear(res);
    return rows;
}

}  // namespace

result<pg_session> pg_session::open(const std::string& conninfo, std::string* error_text) {
    PGconn* c = PQconnectdb(conninfo.c_str());
    if (!c || PQstatus(c) != CONNECTION_OK) {
        if (error_text) *error_text = c ? trimmed(PQerrorMessage(c)) : "out of memory";
        if (c) PQfinish(c);
        return error::connection_failed;
    }
    PQsetNoticeReceiver(c, ignore_notice, nullptr);
    pg_session s(c);
    if (!s.execute("SET TIME ZONE 'UTC'")) {
        if (error_text) *error_text = s.error_;
        return error::connection_failed;
    }
    return s;
}

pg_session::pg_session(pg_session&& o) noexcept
    : conn_(std::exchange(o.conn_, nullptr)), error_(std::move(o.error_)) {}
pg_session& pg_session::operator=(pg_session&& o) noexcept {
    if (this != &o) {
        if (conn_) PQfinish(static_cast<PGconn*>(conn_));
        conn_ = std::exchange(o.conn_, nullptr);
        error_ = std::move(o.error_);
    }
    return *this;
}
pg_session::~pg_session() {
    if (conn_) PQfinish(static_cast<PGconn*>(conn_));
}

result<std::vector<std::vector<cell>>> pg_session::execute(std::string_view sql) {
    auto* c = static_cast<PGconn*>(conn_);
    std::string text(sql);
    if (!PQsendQuery(c, text.c_str())) {
        error_ = trimmed(PQerrorMessage(c));
        return error::connection_failed;
    }
    // Every result in turn: a failing statement in the middle must be seen.
    result<std::vector<std::vector<cell>>> last = std::vector<std::vector<cell>>{};
    while (PGresult* res = PQgetResult(c)) {
        auto r = rows_of(res, error_);
        if (!r || last) last = std::move(r);
    }
    if (PQstatus(c) == CONNECTION_BAD) {
        error_ = trimmed(PQerrorMessage(c));
        return error::connection_failed;
    }
    return last;
}

result<std::vector<std::vector<cell>>> pg_session::query(const std::string& sql,
                                                         std::span<const std::string> params) {
    auto* c = static_cast<PGconn*>(conn_);
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PGresult* res = PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                 nullptr, nullptr, 0);
    if (!res) {
        error_ = trimmed(PQerrorMessage(c));
        return error::connection_failed;
    }
    return rows_of(res, error_);
}

}  // namespace sidecache::db
