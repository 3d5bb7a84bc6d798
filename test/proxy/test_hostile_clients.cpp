// Hostile clients, each beside a normal one (issue 14): a head trickled a
// byte at a time, a huge answer never read, a header flood, 10,000 pipelined
// requests on one connection, a 1 GiB body declared or streamed chunked.
// Each is cut or answered with its status, nothing is buffered whole, and the
// normal client is served meanwhile. (One oversized header, a small body over
// the limit and a head that never ends are in test_passthrough.cpp.)

#include "proxy/server.hpp"
#include "support/test_client.hpp"
#include "support/started_proxy.hpp"
#include "support/test_config.hpp"
#include "support/test_upstream.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <fmt/core.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace sidecache;
using namespace std::chrono_literals;
using test::get_request;
using test::scripted_response;
using test::start_proxy;
using test::test_client;
using test::test_upstream;

namespace {

constexpr std::uint64_t gib = 1024ULL * 1024 * 1024;

scripted_response echo(const test::recorded_request& r) {
    scripted_response res;
    res.headers = {{"Content-Type", "text/plain"}};
    res.body = "answer for " + r.target;
    return res;
}

// A normal client's request, answered while a hostile one is at work.
void served_beside(std::uint16_t port) {
    test_client other(port);
    other.send(get_request("/beside"));
    auto res = other.read_response();
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == "answer for /beside");
}

// Sends `next()`'s bytes on `fd` from a thread of its own until next() gives
// nothing, a send fails (the server closed) or stop() is called; counts the
// bytes the kernel took.
class writer {
public:
    writer(int fd, std::function<std::string()> next) : thread_([this, fd, next = std::move(next)] {
        timeval tv{5, 0};  // a send blocked by a full socket gives up, so stop() is noticed
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        while (!stop_) {
            const auto bytes = next();
            if (bytes.empty()) break;
            std::size_t off = 0;
            while (off < bytes.size() && !stop_) {
                const auto n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
                if (n < 0 && errno == EAGAIN) continue;
                if (n <= 0) {
                    failed_ = true;
                    return;
                }
                off += static_cast<std::size_t>(n);
                sent_ += static_cast<std::size_t>(n);
            }
        }
    }) {}
    ~writer() { stop(); }

    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    std::uint64_t sent() const { return sent_; }
    bool failed() const { return failed_; }

private:
    std::atomic<bool> stop_{false}, failed_{false};
    std::atomic<std::uint64_t> sent_{0};
    std::thread thread_;
};

// The result of huge_upstream's answer: the bytes the kernel took, and
// whether it ended because the peer went (not by its own 30 s send timeout).
struct huge_end {
    std::uint64_t sent = 0;
    bool peer_went = false;
};

// An upstream that answers GET /huge with a `size`-byte body, written 64 KiB
// at a time as the socket takes it (never held whole) until the peer goes,
// and any other target "answer for <target>", one request per connection.
class huge_upstream {
public:
    explicit huge_upstream(std::uint64_t size)
        : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}), size_(size),
          thread_([this] { accept_loop(); }) {}
    ~huge_upstream() {
        ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // ends the blocked accept
        if (thread_.joinable()) thread_.join();
        for (auto& t : connections_) t.join();
    }
    std::uint16_t port() const { return port_; }
    std::future<huge_end> ended() { return ended_.get_future(); }

private:
    static std::string read_head(int fd) {
        std::string head;
        char c;
        while (!head.ends_with("\r\n\r\n") && ::recv(fd, &c, 1, 0) == 1) head += c;
        return head;
    }

    // Each connection is answered by its request's target, not by the order
    // connections arrive in (sidecache may open the pool's connections for
    // two requests in either order).
    void accept_loop() {
        for (;;) {
            boost::system::error_code ec;
            boost::asio::ip::tcp::socket s(ioc_);
            acceptor_.accept(s, ec);
            if (ec) return;
            connections_.emplace_back([this, s = std::move(s)]() mutable {
                const auto head = read_head(s.native_handle());
                const auto from = head.find(' ') + 1;
                const auto target = head.substr(from, head.find(' ', from) - from);
                if (target == "/huge")
                    answer_huge(s.native_handle());
                else
                    answer_small(s.native_handle(), target);
            });
        }
    }

    static void answer_small(int fd, const std::string& target) {
        const auto body = "answer for " + target;
        const auto answer =
            fmt::format("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}", body.size(), body);
        ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
    }

    void answer_huge(int fd) {
        huge_end end;
        // A stalled send ends after 30 s: the test fails rather than hangs.
        timeval tv{30, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        const auto answer = fmt::format("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", size_);
        ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
        const std::string chunk(64 * 1024, 'h');
        while (end.sent < size_) {
            const auto n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
            if (n <= 0) {
                end.peer_went = n < 0 && (errno == EPIPE || errno == ECONNRESET);
                break;
            }
            end.sent += static_cast<std::uint64_t>(n);
        }
        ended_.set_value(end);
    }

    boost::asio::io_context ioc_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::uint16_t port_ = acceptor_.local_endpoint().port();
    std::uint64_t size_;
    std::promise<huge_end> ended_;
    std::vector<std::thread> connections_;  // touched by the accept thread only, joined after it
    std::thread thread_;
};

}  // namespace

TEST_CASE("slowloris: a head trickled a byte at a time is cut at header_timeout, not kept alive per byte",
          "[integration]") {
    test_upstream up(echo);
    auto srv = start_proxy(up.port(), [](conf::config& c) { c.server.header_timeout = conf::duration{500}; });
    test_client slow(srv->port());
    // 1 byte per 20 ms: the whole head would take ~9 s, far past header_timeout.
    const auto head = get_request("/slow", "X-Pad: " + std::string(400, 'p') + "\r\n");
    std::size_t next_byte = 0;
    writer trickle(slow.native_handle(), [&] {
        if (next_byte >= head.size()) return std::string();
        std::this_thread::sleep_for(20ms);  // the trickle's pace, not a wait for an event
        return std::string(1, head[next_byte++]);
    });
    served_beside(srv->port());
    auto res = slow.read_response();
    REQUIRE(res);
    CHECK(res->status == 408);
    trickle.stop();
    CHECK(trickle.sent() < head.size());  // cut before the head was whole
    CHECK(up.requests() == 1);            // the normal client's only
}

TEST_CASE("a slow reader of a huge answer is cut by body_timeout, the answer never buffered whole",
          "[integration]") {
    huge_upstream up(gib);
    auto ended = up.ended();
    auto srv = start_proxy(up.port(), [](conf::config& c) {
        c.server.body_timeout = conf::duration{300};
        c.upstream.response_timeout = conf::duration{10'000};
    });
    test_client reader(srv->port());
    const int small = 64 * 1024;  // no receive window autotuned to tens of MiB
    ::setsockopt(reader.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    reader.send(get_request("/huge"));  // and never read
    served_beside(srv->port());         // while the relay is stalled
    // body_timeout after the relay stalls on the full socket, sidecache drops
    // both connections, and the upstream's send fails.
    REQUIRE(ended.wait_for(60s) == std::future_status::ready);
    const auto end = ended.get();
    INFO("the upstream wrote " << end.sent << " bytes of 1 GiB");
    CHECK(end.peer_went);
    // What passed: the sockets' buffers (up to tens of MiB with the kernel's
    // autotuning) and what sidecache held, far from the 1 GiB.
    CHECK(end.sent < 128ULL * 1024 * 1024);
    // The reader, reading at last, gets what the sockets held, then the close.
    CHECK(reader.closed_by_peer());
}

TEST_CASE("a header flood (10,000 lines) is answered 431 and closed, nothing forwarded", "[integration]") {
    test_upstream up(echo);
    auto srv = start_proxy(up.port());  // max_header_bytes: the default 16 KiB
    test_client flood(srv->port());
    std::string lines;
    for (int i = 0; i < 10'000; ++i) lines += fmt::format("X-Flood-{}: {}\r\n", i, i);
    writer w(flood.native_handle(), [&, once = true]() mutable {
        if (!once) return std::string();
        once = false;
        return "GET /flood HTTP/1.1\r\nHost: x\r\n" + lines + "\r\n";
    });
    served_beside(srv->port());
    auto res = flood.read_response();
    REQUIRE(res);
    CHECK(res->status == 431);
    w.stop();
    CHECK(flood.closed_by_peer());
    CHECK(up.requests() == 1);  // the normal client's only
}

TEST_CASE("10,000 pipelined requests on one connection: every answer, in order", "[integration]") {
    test_upstream up(echo);
    auto srv = start_proxy(up.port(), [](conf::config& c) { c.log.access_log = false; });
    test_client client(srv->port(), 30s);
    constexpr int count = 10'000;
    int batch = 0;
    // Written in batches of 500 from a thread, while this one reads: the
    // server must go on reading as it answers, whatever the client does.
    writer w(client.native_handle(), [&] {
        if (batch * 500 >= count) return std::string();
        std::string out;
        for (int i = batch * 500; i < (batch + 1) * 500; ++i) out += get_request(fmt::format("/p{}", i));
        ++batch;
        return out;
    });
    int in_order = 0;
    for (int i = 0; i < count; ++i) {
        auto res = client.read_response();
        if (!res || res->status != 200 || res->body != fmt::format("answer for /p{}", i)) break;
        ++in_order;
    }
    CHECK(in_order == count);
    w.stop();
    CHECK_FALSE(w.failed());
    served_beside(srv->port());
    CHECK(up.requests() == static_cast<std::size_t>(count) + 1);
}

TEST_CASE("a 1 GiB body declared: 413 at once, before any of it, nothing forwarded", "[integration]") {
    test_upstream up(echo);
    auto srv = start_proxy(up.port());  // max_body_bytes: the default 64 MiB
    test_client client(srv->port());
    client.send(fmt::format("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", gib));
    auto res = client.read_response();
    REQUIRE(res);
    CHECK(res->status == 413);
    CHECK(client.closed_by_peer());
    served_beside(srv->port());
    CHECK(up.requests() == 1);  // the normal client's only
}

TEST_CASE("a 1 GiB body streamed chunked: 413 once past max_body_bytes, the rest never read", "[integration]") {
    test_upstream up(echo);
    auto srv = start_proxy(up.port(), [](conf::config& c) { c.server.max_body_bytes = 1024 * 1024; });
    test_client client(srv->port());
    const std::string chunk = fmt::format("{:x}\r\n{}\r\n", 64 * 1024, std::string(64 * 1024, 'c'));
    std::uint64_t body = 0;
    writer w(client.native_handle(), [&, head = true]() mutable {
        if (head) {
            head = false;
            return std::string("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        }
        if (body >= gib) return std::string("0\r\n\r\n");
        body += 64 * 1024;
        return chunk;
    });
    auto res = client.read_response();
    REQUIRE(res);
    CHECK((res->status == 413 || res->status == 400));
    w.stop();
    INFO("the client wrote " << w.sent() << " bytes");
    CHECK(w.sent() < gib / 2);  // cut long before the end
    served_beside(srv->port());
}
