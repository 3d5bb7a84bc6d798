// A lean thundering-herd client: N requests for one key leave together on N
// idle keep-alive connections, and each is timed from its own write to the
// last byte of its answer. Plain sockets and epoll on one thread, so the
// client adds as little as it can to what it measures (the node client it
// replaces added ~14 ms at p50 to 200 answers).
//
//   herd_client PORT PATH TOKEN [N=200] [WARM_TOKEN]
//
// 1. Opens N connections to 127.0.0.1:PORT (TCP_NODELAY) and sends one
//    warm-up request on each (WARM_TOKEN, another key), so that the server
//    has accepted every connection and waits on it, idle, for the next request.
// 2. The herd: writes the N requests for TOKEN back to back (one write(2)
//    each, one thread), then reads every answer.
// 3. The same N requests again, now cache hits: their p50 is the floor the
//    client, the loopback and the server's hit path add to any answer.
//
// Prints a readable summary, then (for scripts)
//   RESULT n ok p50 p99 max min hit_p50 hit_p99 hit_max spread span
// in ms, where spread is the time from the herd's first write to its last,
// and span from its first write to the last byte of its last answer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "herd_client: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

bool iequals_prefix(std::string_view line, std::string_view name) {
    if (line.size() < name.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
    }
    return true;
}

// What is known of one response from the bytes received so far.
struct response_state {
    bool complete = false;
    int status = 0;
};

// Parses the buffer from its start (answers are a few KiB: simpler than an
// incremental parser and cheap enough). Handles Content-Length and chunked
// bodies; a body delimited by EOF is completed by the caller.
response_state parse_response(std::string_view buf) {
    response_state out;
    const auto head_end = buf.find("\r\n\r\n");
    if (head_end == std::string_view::npos) return out;
    const std::string_view head = buf.substr(0, head_end);
    if (head.size() >= 12 && head.substr(0, 5) == "HTTP/")
        out.status = std::atoi(std::string(head.substr(9, 3)).c_str());
    std::optional<std::size_t> content_length;
    bool chunked = false;
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos < head.size()) {
        const std::size_t start = pos + 2;
        std::size_t end = head.find("\r\n", start);
        if (end == std::string_view::npos) end = head.size();
        const std::string_view line = head.substr(start, end - start);
        if (iequals_prefix(line, "content-length:")) {
            content_length = std::strtoull(std::string(line.substr(15)).c_str(), nullptr, 10);
        } else if (iequals_prefix(line, "transfer-encoding:") &&
                   line.find("chunked") != std::string_view::npos) {
            chunked = true;
        }
        pos = end;
    }
    const std::string_view body = buf.substr(head_end + 4);
    if (out.status == 204 || out.status == 304) {
        out.complete = true;
    } else if (chunked) {
        std::size_t at = 0;
        for (;;) {
            const auto line_end = body.find("\r\n", at);
            if (line_end == std::string_view::npos) return out;
            const std::size_t size =
                std::strtoull(std::string(body.substr(at, line_end - at)).c_str(), nullptr, 16);
            at = line_end + 2;
            if (size == 0) {
                // No trailers expected: the last chunk is followed by an empty line.
                out.complete = body.size() >= at + 2;
                return out;
            }
            if (body.size() < at + size + 2) return out;
            at += size + 2;
        }
    } else if (content_length) {
        out.complete = body.size() >= *content_length;
    }
    return out;
}

struct connection {
    int fd = -1;
    bool alive = true;
    std::string in;
    clock_type::time_point sent;
    double ms = -1;  // this round's latency, -1 if no answer
    int status = 0;
};

struct round_result {
    std::vector<double> ms;  // sorted latencies of the answered requests
    int ok = 0;              // answers with status 200
    double spread_ms = 0;    // first write to last write
    double span_ms = 0;      // first write to last answer's last byte
};

double ms_between(clock_type::time_point a, clock_type::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// The same definition as the node client: the smallest value with at least
// p% of the values at or below it.
double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100 * static_cast<double>(sorted.size())));
    return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// Sends `request` on every live connection back to back, then reads every
// answer until all have come or the deadline passes.
round_result run_round(int ep, std::vector<connection>& conns, const std::string& request,
                       std::chrono::milliseconds budget) {
    round_result out;
    const auto first = clock_type::now();
    for (auto& c : conns) {
        c.in.clear();
        c.ms = -1;
        c.status = 0;
        if (!c.alive) continue;
        c.sent = clock_type::now();
        const ssize_t n = ::write(c.fd, request.data(), request.size());
        // A few hundred bytes into an idle socket's empty send buffer: all or an error.
        if (n != static_cast<ssize_t>(request.size())) c.alive = false;
    }
    out.spread_ms = ms_between(first, clock_type::now());

    std::size_t pending = 0;
    for (auto& c : conns) pending += c.alive ? 1 : 0;
    const auto deadline = clock_type::now() + budget;
    std::vector<epoll_event> events(conns.size());
    char buf[65536];
    while (pending > 0) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
        if (left <= 0) break;
        const int n =
            ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), static_cast<int>(left));
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int e = 0; e < n; ++e) {
            auto& c = conns[events[e].data.u32];
            if (!c.alive || c.ms >= 0) continue;
            for (;;) {
                const ssize_t got = ::read(c.fd, buf, sizeof buf);
                if (got > 0) {
                    c.in.append(buf, static_cast<std::size_t>(got));
                    const auto state = parse_response(c.in);
                    if (state.complete) {
                        c.ms = ms_between(c.sent, clock_type::now());
                        c.status = state.status;
                        --pending;
                        break;
                    }
                    continue;
                }
                if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                if (got < 0 && errno == EINTR) continue;
                // EOF or an error: an answer delimited by EOF is complete, else lost.
                const auto state = parse_response(c.in);
                if (got == 0 && c.in.find("\r\n\r\n") != std::string::npos) {
                    c.ms = ms_between(c.sent, clock_type::now());
                    c.status = state.status;
                }
                c.alive = false;
                --pending;
                break;
            }
        }
    }
    for (const auto& c : conns) {
        if (c.ms < 0) continue;
        out.span_ms = std::max(out.span_ms, ms_between(first, c.sent) + c.ms);
        out.ms.push_back(c.ms);
        if (c.status == 200) ++out.ok;
    }
    std::sort(out.ms.begin(), out.ms.end());
    return out;
}

std::string make_request(std::string_view path, int port, std::string_view token) {
    std::string r;
    r += "GET ";
    r += path;
    r += " HTTP/1.1\r\nHost: 127.0.0.1:";
    r += std::to_string(port);
    r += "\r\nAuthorization: Bearer ";
    r += token;
    r += "\r\nConnection: keep-alive\r\n\r\n";
    return r;
}

void print_round(const char* name, const round_result& r, std::size_t n) {
    std::printf(
        "%-5s %zu/%zu answered, %d 200 OK, p50 %.2f ms, p99 %.2f ms, max %.2f ms, min %.2f ms, writes spread "
        "%.3f ms, last answer %.2f ms after the first write\n",
        name, r.ms.size(), n, r.ok, percentile(r.ms, 50), percentile(r.ms, 99),
        r.ms.empty() ? 0.0 : r.ms.back(), r.ms.empty() ? 0.0 : r.ms.front(), r.spread_ms, r.span_ms);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s PORT PATH TOKEN [N=200] [WARM_TOKEN]\n", argv[0]);
        return 2;
    }
    const int port = std::atoi(argv[1]);
    const std::string path = argv[2];
    const std::string token = argv[3];
    const std::size_t n = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 200;
    const std::string warm_token = argc > 5 ? argv[5] : token + "x";
    if (port <= 0 || port > 65535 || n == 0) {
        std::fprintf(stderr, "herd_client: bad PORT or N\n");
        return 2;
    }

    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);

    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    std::vector<connection> conns(n);
    for (std::size_t i = 0; i < n; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) die("socket");
        // Blocking connect: on loopback the handshake completes at once.
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) die("connect");
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::fcntl(fd, F_SETFL, O_NONBLOCK) != 0) die("fcntl");
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.u32 = static_cast<std::uint32_t>(i);
        if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
        conns[i].fd = fd;
    }

    const auto budget = std::chrono::seconds(30);
    const auto warm = run_round(ep, conns, make_request(path, port, warm_token), budget);
    print_round("warm", warm, n);
    // Let the server finish with the warm-up (its cache insert, its sessions
    // going back to their idle read) before the herd leaves.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));

    const std::string request = make_request(path, port, token);
    const auto herd = run_round(ep, conns, request, budget);
    print_round("herd", herd, n);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto hits = run_round(ep, conns, request, budget);
    print_round("hits", hits, n);

    std::printf("RESULT %zu %d %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.3f %.2f\n", n, herd.ok,
                percentile(herd.ms, 50), percentile(herd.ms, 99), herd.ms.empty() ? 0.0 : herd.ms.back(),
                herd.ms.empty() ? 0.0 : herd.ms.front(), percentile(hits.ms, 50), percentile(hits.ms, 99),
                hits.ms.empty() ? 0.0 : hits.ms.back(), herd.spread_ms, herd.span_ms);
    for (auto& c : conns) ::close(c.fd);
    ::close(ep);
    return 0;
}
