#include "auth/verifier.hpp"
#include "proxy/error.hpp"
#include "proxy/server_state.hpp"
#include "upstream/forward.hpp"
#include "upstream/head_rules.hpp"
#include "upstream/send.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <functional>
#include <vector>

namespace sidecache::proxy {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using namespace net::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
using request_parser = http::request_parser<http::buffer_body>;

// Registers a session for drain() and unregisters it when the coroutine
// frame goes, however it goes.
class registration {
public:
    registration(server_state& s, const std::shared_ptr<session_handle>& h) : state_(s), handle_(h.get()) {
        std::lock_guard lock(state_.mutex);
        state_.sessions.emplace(handle_, h);
    }
    ~registration() {
        std::lock_guard lock(state_.mutex);
        state_.sessions.erase(handle_);
        state_.sessions_changed.notify_all();
    }
    registration(const registration&) = delete;
    registration& operator=(const registration&) = delete;

private:
    server_state& state_;
    session_handle* handle_;
};

struct error_answer {
    http::status status;
    const char* code;
};

error_answer answer_for(error e) {
    switch (e) {
    case error::header_too_large:
        return {http::status::request_header_fields_too_large, "HEADER_TOO_LARGE"};
    case error::body_too_large:
        return {http::status::payload_too_large, "PAYLOAD_TOO_LARGE"};
    case error::header_timeout:
        return {http::status::request_timeout, "REQUEST_TIMEOUT"};
    case error::bad_request:
    case error::ambiguous_framing:
        return {http::status::bad_request, "BAD_REQUEST"};
    case error::upstream_unavailable:
        return {http::status::bad_gateway, "UPSTREAM_UNAVAILABLE"};
    case error::upstream_timeout:
        return {http::status::gateway_timeout, "UPSTREAM_TIMEOUT"};
    }
    return {http::status::internal_server_error, "INTERNAL"};
}

void count(proxy_stats& s, error e) {
    switch (e) {
    case error::header_too_large:
        s.rejected_431.inc();
        break;
    case error::body_too_large:
        s.rejected_413.inc();
        break;
    case error::header_timeout:
        s.rejected_408.inc();
        break;
    case error::bad_request:
    case error::ambiguous_framing:
        s.rejected_400.inc();
        break;
    case error::upstream_unavailable:
        s.upstream_502.inc();
        break;
    case error::upstream_timeout:
        s.upstream_504.inc();
        break;
    }
}

// Writes the JSON error envelope of the API contract for `e`.
net::awaitable<error_code> write_error(beast::tcp_stream& stream, error e, bool keep_alive,
                                       std::chrono::milliseconds timeout) {
    const auto answer = answer_for(e);
    http::response<http::string_body> res{answer.status, 11};
    res.set(http::field::content_type, "application/json; charset=utf-8");
    res.body() = boost::json::serialize(boost::json::object{
        {"success", false}, {"error", {{"code", answer.code}, {"message", make_error_code(e).message()}}}});
    res.keep_alive(keep_alive);
    res.prepare_payload();
    stream.expires_after(timeout);
    auto [ec, n] = co_await http::async_write(stream, res, use_tuple);
    co_return ec;
}

// Ends a connection after a final answer: stop sending, then read and drop
// what the client still sends for a moment, so that our answer is not lost
// to a reset caused by unread bytes.
net::awaitable<void> linger_close(beast::tcp_stream& stream) {
    error_code ec;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
    std::array<char, 4096> sink;
    stream.expires_after(std::chrono::seconds(1));
    for (;;) {
        auto [rec, n] = co_await stream.async_read_some(net::buffer(sink), use_tuple);
        if (rec) break;
    }
    stream.close();
}

// Starts (or leaves running) the lazy idle watch of `h`: when the timer
// fires and the session has been waiting for a request past its deadline,
// the socket is cancelled and the pending read ends with operation_aborted.
// A cancelled wait (close_idle_by moved the deadline earlier) re-arms too.
// Runs on the session's executor; holds the session only weakly.
void watch_idle(const std::shared_ptr<session_handle>& h) {
    if (h->idle_timer_pending) return;  // it fires no later than the deadline, then re-arms
    h->idle_timer_pending = true;
    h->idle_timer.expires_at(h->idle_deadline);
    h->idle_timer.async_wait([weak = std::weak_ptr<session_handle>(h)](const error_code&) {
        auto h = weak.lock();
        if (!h) return;
        h->idle_timer_pending = false;
        if (h->idle_deadline == std::chrono::steady_clock::time_point::max()) return;
        if (std::chrono::steady_clock::now() >= h->idle_deadline) {
            error_code ignored;
            h->stream.socket().cancel(ignored);
            return;
        }
        watch_idle(h);
    });
}

// Answers of pipelined requests not written yet: the buffers and what owns
// their bytes. Written together, in order, with one write.
struct pending_answers {
    std::vector<net::const_buffer> buffers;
    std::vector<std::shared_ptr<const void>> owners;

    bool empty() const { return owners.empty(); }
    std::size_t size() const { return owners.size(); }
};

// Writes what is pending, if anything. Called before anything else is
// written and before any read that may wait.
net::awaitable<error_code> flush(beast::tcp_stream& stream, pending_answers& pending,
                                 std::chrono::milliseconds timeout) {
    if (pending.empty()) co_return error_code{};
    auto ec =
        co_await upstream::send_all(stream, pending.buffers, std::chrono::steady_clock::now() + timeout);
    pending.buffers.clear();
    pending.owners.clear();
    co_return ec;
}

// Whether the buffered bytes hold a whole request head: the next request
// can be parsed without reading, so the answer before it may wait to go out
// with the next one. (If the interceptor then waits for a fill, the held
// answers wait with it: a pipelining client could not use the later ones
// before them anyway.)
bool holds_head(const beast::flat_buffer& buffer) {
    const auto b = buffer.data();
    const std::string_view bytes(static_cast<const char*>(b.data()), b.size());
    return bytes.find("\r\n\r\n") != std::string_view::npos;
}

// Maps a failed head read to the answer, or nothing (close quietly).
std::optional<error> classify_head_error(const error_code& ec) {
    if (ec == http::error::header_limit) return error::header_too_large;
    if (ec == http::error::body_limit) return error::body_too_large;
    if (ec == http::error::bad_transfer_encoding) return error::ambiguous_framing;
    if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
        return error::bad_request;
    }
    return std::nullopt;  // the client closed, reset, or we are draining
}

// Parses a request head from what is already buffered: need_more when it
// is not all there (then read_head() reads the rest). No coroutine, so a
// head that came whole (the usual case) costs no frame and no timer.
error_code parse_buffered_head(beast::flat_buffer& buffer, request_parser& parser) {
    if (buffer.size() == 0) return http::error::need_more;
    error_code ec;
    buffer.consume(parser.put(buffer.data(), ec));
    return ec;
}

// Reads the rest of a request head into `parser`, within `timeout` once
// called, after parse_buffered_head() found it incomplete.
net::awaitable<error_code> read_head(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                     request_parser& parser, net::steady_timer& timer,
                                     std::chrono::milliseconds timeout) {
    // Beast's stream timeout closes the socket; a 408 must still be written,
    // so the head read races a separate timer instead.
    stream.expires_never();
    timer.expires_after(timeout);
    auto result =
        co_await (http::async_read_header(stream, buffer, parser, use_tuple) || timer.async_wait(use_tuple));
    if (result.index() == 1) co_return make_error_code(error::header_timeout);
    co_return std::get<0>(std::get<0>(result));
}

// One client connection's state, shared by the stages of run_session().
struct client_connection {
    server_state& state;
    const std::shared_ptr<session_handle>& handle;
    const conf::server_config* cfg;  // in effect: re-read per request (a reload may change it)
    std::string address;
    unsigned short port = 0;
    beast::flat_buffer buffer;
    net::steady_timer timer;
    std::vector<char> scratch;  // relay buffer, allocated on the first forwarded request
    // Intercepted answers to pipelined requests, held while the next request
    // is already buffered (at most server.max_pipelined), then written in one
    // write. Invariant: non-empty only when the buffer holds a whole head.
    pending_answers pending;

    beast::tcp_stream& stream() { return handle->stream; }
};

// What the connection does after a stage.
enum class step {
    next_request,  // serve the next request
    finish,        // write what is pending, then end the connection (FIN)
    close,         // end it now
    not_mine,      // the interceptor does not answer this request
};

// Whether the next request waits after an idle wait on the socket (then
// closed quietly after idle_timeout). The first request's head is bounded by
// header_timeout from the accept.
// While draining, no later than the drain's idle grace.
void start_idle(client_connection& c) {
    auto deadline = std::chrono::steady_clock::now() + c.cfg->idle_timeout;
    if (c.state.draining) deadline = std::min(deadline, c.state.drain_idle_end.load());
    c.handle->idle_deadline = deadline;
    watch_idle(c.handle);
}

// The answer to a request head read with `ec`, if it is refused; nothing
// either when it is served or when the connection closes quietly (`ec` set).
std::optional<error> refusal_for(const error_code& ec, const request_parser& parser) {
    if (ec == error::header_timeout) return error::header_timeout;
    if (ec) return classify_head_error(ec);
    if (upstream::ambiguous_framing(parser.get())) return error::ambiguous_framing;
    if (parser.get().version() >= 11 && parser.get().find(http::field::host) == parser.get().end()) {
        return error::bad_request;  // RFC 9112 §3.2: Host is required
    }
    return std::nullopt;
}

// The client's address; TCP_NODELAY, and non-blocking so that synchronous
// writes return would_block instead of waiting: answers are written at once
// when the kernel takes them (send_now, forward).
net::ip::tcp::endpoint prepare_socket(net::ip::tcp::socket& socket, error_code& ec) {
    auto remote = socket.remote_endpoint(ec);
    if (ec) return remote;
    socket.set_option(net::ip::tcp::no_delay(true), ec);
    socket.non_blocking(true, ec);
    return remote;
}

// Whether the cache has a turn: GET/HEAD without body.
bool for_cache(const client_connection& c, const request_parser& parser) {
    const auto method = parser.get().method();
    return c.state.intercept && parser.is_done() && (method == http::verb::get || method == http::verb::head);
}

// Read-your-writes: for a write (not GET/HEAD) with a verified token, what
// forward() calls with the upstream's status before the answer's head goes
// out: a 2xx evicts the writer's cache entries and is counted. Empty (no
// token verified) for anything else, so a forwarded GET verifies nothing.
std::function<void(unsigned)> evict_on_success(client_connection& c, const request_parser& parser) {
    const auto method = parser.get().method();
    if (!c.state.intercept || method == http::verb::get || method == http::verb::head) return {};
    auto evict = c.state.intercept->on_write(parser.get());
    if (!evict) return {};
    return [&stats = c.state.stats, evict = std::move(evict)](unsigned status) {
        if (status / 100 != 2) return;
        evict();
        stats.write_invalidations.inc();
    };
}

// What is left of a cache answer after deliver(): nothing, the rest of it
// (the socket was full), or the answers held with it.
struct delivery {
    enum class write { none, rest, pending };
    step next;
    write then = write::none;
    std::size_t sent = 0;  // bytes of the answer already sent (write::rest)
};

// A cache answer, written at once where the socket takes it. Synchronous, so
// that a hit costs no coroutine frame beyond the interceptor's.
delivery deliver(client_connection& c, response_buffers& answer, bool keep_alive, unsigned version) {
    c.state.stats.intercepted.inc();
    const bool last = !(keep_alive && answer.keep_alive && version >= 11);
    const step next = last ? step::finish : step::next_request;
    const bool hold = !last && c.pending.size() + 1 < c.cfg->max_pipelined && holds_head(c.buffer);
    if (!hold && c.pending.empty()) {  // nothing held: written as it is (the common case)
        delivery d{next};
        const auto ec = upstream::send_now(c.stream(), answer.buffers, d.sent);
        if (ec == net::error::would_block)
            d.then = delivery::write::rest;
        else if (ec)
            d.next = step::close;
        return d;
    }
    c.pending.buffers.insert(c.pending.buffers.end(), answer.buffers.begin(), answer.buffers.end());
    c.pending.owners.push_back(std::move(answer.storage));
    return {next, hold ? delivery::write::none : delivery::write::pending};
}

// The writes deliver() left: the rest of the answer, or the held answers.
net::awaitable<step> finish_delivery(client_connection& c, const response_buffers& answer, delivery d) {
    error_code ec;
    if (d.then == delivery::write::rest) {
        ec = co_await upstream::send_rest(c.stream(), answer.buffers, d.sent,
                                          std::chrono::steady_clock::now() + c.cfg->body_timeout);
    } else {
        ec = co_await flush(c.stream(), c.pending, c.cfg->body_timeout);
    }
    co_return ec ? step::close : d.next;
}

// A request's access log line (log.access_log): started when its head is
// read, recorded once its answer is written or handed to the socket. Does
// nothing (reads no clock) when the access log is off.
class access_record {
public:
    access_record(log::access_log* log, const request_parser& parser) : log_(log), parser_(parser) {
        if (!log_) return;
        time_ = std::chrono::system_clock::now();
        start_ = std::chrono::steady_clock::now();
    }

    void cached(const response_buffers& answer) const {
        if (!log_) return;
        auto e = entry();
        e.status = answer.status;
        e.bytes = answer.body_bytes;
        e.cache = answer.cache_result;
        if (answer.user) e.user_id = answer.user->user_id;
        e.fill = answer.fill_wait;
        log_->record(e);
    }

    // `status`: the upstream's, or sidecache's own 502/504/413/400 (0: none).
    void forwarded(unsigned status, std::uint64_t body_bytes,
                   std::chrono::steady_clock::duration upstream) const {
        if (!log_) return;
        auto e = entry();
        e.status = status;
        e.bytes = body_bytes;
        e.cache = "pass";
        e.upstream = upstream;
        log_->record(e);
    }

private:
    log::access_entry entry() const {
        log::access_entry e;
        e.time = time_;
        e.method = parser_.get().method_string();
        e.target = parser_.get().target();
        e.duration = std::chrono::steady_clock::now() - start_;
        return e;
    }

    log::access_log* log_;
    const request_parser& parser_;
    std::chrono::system_clock::time_point time_;
    std::chrono::steady_clock::time_point start_;
};

// A forwarded request failed before any byte of its answer: 502/504 for an
// upstream failure, 413/400 for the client's body, or a quiet close.
// `status` is set to the status written, if any.
net::awaitable<step> answer_failure(client_connection& c, const request_parser& parser,
                                    const upstream::forward_result& result, bool keep_alive,
                                    unsigned& status) {
    std::optional<error> refusal;
    if (result.upstream_fault) {
        refusal = result.ec == upstream::error::response_timeout ? error::upstream_timeout
                                                                 : error::upstream_unavailable;
    } else if (result.ec == http::error::body_limit) {
        refusal = error::body_too_large;
    } else {
        refusal = classify_head_error(result.ec);
    }
    if (!refusal) co_return step::close;
    count(c.state.stats, *refusal);
    status = static_cast<unsigned>(answer_for(*refusal).status);
    // The connection survives an upstream failure only if the request was
    // read whole (nothing of it is left in the stream).
    const bool survive = keep_alive && result.upstream_fault && parser.is_done();
    if (co_await write_error(c.stream(), *refusal, survive, c.cfg->body_timeout)) co_return step::close;
    if (!survive) {
        co_await linger_close(c.stream());
        co_return step::close;
    }
    co_return step::next_request;
}

// A forwarded request by the status class it was answered with: the
// upstream's, else the 502/504 (upstream failure) or 4xx (the client's
// request) sidecache answered in its place.
void count_forwarded(server_state& state, const upstream::forward_result& result,
                     std::chrono::steady_clock::time_point started) {
    unsigned status_class = result.status / 100;
    if (status_class < 1 || status_class > 5) status_class = result.upstream_fault ? 5 : 4;
    state.stats.passthrough_by_class[status_class].inc();
    state.stats.passthrough_duration.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

// The request is not the cache's: sent to the legacy backend, its answer
// relayed as it arrives. The time counted (metrics, access log) starts once
// the answers still pending for this client are flushed.
net::awaitable<step> pass_through(client_connection& c, request_parser& parser, bool keep_alive,
                                  const access_record& access) {
    auto& state = c.state;
    state.stats.forwarded.inc();
    if (!c.pending.empty() && co_await flush(c.stream(), c.pending, c.cfg->body_timeout)) co_return step::close;
    const auto started = std::chrono::steady_clock::now();
    if (c.scratch.empty()) c.scratch.resize(16 * 1024);
    const auto on_status = evict_on_success(c, parser);
    const auto result = co_await upstream::forward(
        upstream::client_side{c.stream(), c.buffer, parser, c.address, c.cfg->body_timeout, c.scratch, keep_alive,
                              &state.draining, on_status ? &on_status : nullptr},
        state.pool);
    const auto upstream_time = std::chrono::steady_clock::now() - started;
    auto next = !result.ec && result.keep_alive ? step::next_request : step::finish;
    unsigned status = result.response_started ? result.status : 0;
    if (result.ec && !result.response_started) next = co_await answer_failure(c, parser, result, keep_alive, status);
    count_forwarded(state, result, started);
    access.forwarded(status, result.body_bytes, upstream_time);
    co_return next;
}

}  // namespace

void close_idle_by(const std::shared_ptr<session_handle>& h, std::chrono::steady_clock::time_point idle_end) {
    constexpr auto waiting_for_nothing = std::chrono::steady_clock::time_point::max();
    // Busy (reading or answering a request): start_idle() applies the grace.
    if (h->idle_deadline == waiting_for_nothing || h->idle_deadline <= idle_end) return;
    h->idle_deadline = idle_end;
    if (h->idle_timer_pending)
        h->idle_timer.cancel();  // its handler re-arms at the new deadline
    else
        watch_idle(h);
}

net::awaitable<void> run_session(std::shared_ptr<server_state> state, net::ip::tcp::socket socket) {
    auto handle = std::make_shared<session_handle>(std::move(socket));
    registration registered(*state, handle);
    auto& stream = handle->stream;

    error_code ec;
    const auto remote = prepare_socket(stream.socket(), ec);
    if (ec) co_return;
    client_connection c{*state,
                        handle,
                        &state->settings.current().server,
                        remote.address().to_string(),
                        remote.port(),
                        {},
                        net::steady_timer(stream.get_executor()),
                        {},
                        {}};
    // The stages are inline or synchronous where a request usually passes
    // without waiting: each coroutine called costs a frame per request.
    for (bool first = true;; first = false) {
        c.cfg = &state->settings.current().server;  // one acquire load: a reload's limits apply
        const auto& cfg = *c.cfg;
        // Draining does not end the connection here: its last answer may have
        // said keep-alive (written before the drain began), so the client may
        // be writing a request now. Each answer written while draining says
        // "Connection: close"; an idle wait ends at the drain's idle grace.
        if (!first && c.buffer.size() == 0) {  // keep-alive: wait for the next request
            if (!c.pending.empty() && co_await flush(stream, c.pending, cfg.body_timeout)) co_return;
            start_idle(c);
            auto [rec, n] = co_await stream.socket().async_read_some(c.buffer.prepare(4096), use_tuple);
            handle->idle_deadline = std::chrono::steady_clock::time_point::max();
            if (rec) {
                // The drain's grace is over: FIN first, so a client writing
                // in this instant sees the close rather than a reset.
                if (rec == net::error::operation_aborted && state->draining) co_await linger_close(stream);
                co_return;
            }
            c.buffer.commit(n);
        }

        request_parser parser;
        parser.header_limit(static_cast<std::uint32_t>(cfg.max_header_bytes));
        parser.body_limit(cfg.max_body_bytes);
        ec = parse_buffered_head(c.buffer, parser);
        if (ec == http::error::need_more)
            ec = co_await read_head(stream, c.buffer, parser, c.timer, cfg.header_timeout);
        const auto refusal = refusal_for(ec, parser);
        if (refusal) {  // answered, then the connection ends
            count(state->stats, *refusal);
            if (!c.pending.empty() && co_await flush(stream, c.pending, cfg.body_timeout)) co_return;
            co_await write_error(stream, *refusal, false, cfg.body_timeout);
            co_await linger_close(stream);
            co_return;
        }
        if (ec) co_return;  // the client closed, reset, or we are draining

        state->stats.requests.inc();
        const access_record access(state->access_on.load(std::memory_order_acquire), parser);
        const bool keep_alive = parser.get().keep_alive() && !state->draining;
        auto next = step::not_mine;
        if (for_cache(c, parser)) {  // the cache's turn, inline: a hit costs no frame of ours
            auto& req = parser.get();
            auto answer = co_await state->intercept->handle(
                request_view{req.method(), req.target(), req.version(), req, c.address, c.port, keep_alive});
            if (answer) {
                const auto d = deliver(c, *answer, keep_alive, req.version());
                next = d.next;
                if (d.then != delivery::write::none) next = co_await finish_delivery(c, *answer, d);
                access.cached(*answer);
            }
        }
        if (next == step::not_mine) next = co_await pass_through(c, parser, keep_alive, access);
        if (next == step::close) co_return;
        if (next == step::finish) break;
    }
    // Keep-alive ends here: send FIN, and let the peer see all we wrote.
    if (!c.pending.empty() && co_await flush(stream, c.pending, c.cfg->body_timeout)) co_return;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
}

}  // namespace sidecache::proxy
