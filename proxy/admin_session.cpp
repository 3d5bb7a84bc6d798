#include "conf/effective.hpp"
#include "log/logger.hpp"
#include "proxy/purge.hpp"
#include "proxy/server_state.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/core.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

namespace sidecache::proxy {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

// Liveness answers whoever asks: a kubelet or a load balancer has no token.
bool is_liveness(std::string_view path) {
    return path == "/live" || path == "/healthz";
}

std::array<unsigned char, SHA256_DIGEST_LENGTH> sha256(std::string_view text) {
    std::array<unsigned char, SHA256_DIGEST_LENGTH> out{};
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
    return out;
}

// "Authorization: Bearer <admin.token>", compared in constant time: the
// digests have one length whatever was sent, and CRYPTO_memcmp reads all of
// them, so neither the token's length nor a matching prefix shows in the
// time taken.
bool authorized(const std::string& token, const request& req) {
    if (token.empty()) return true;
    const std::string_view header = req[http::field::authorization];
    constexpr std::string_view scheme = "bearer ";
    if (header.size() <= scheme.size() ||
        !std::equal(scheme.begin(), scheme.end(), header.begin(),
                    [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); }))
        return false;
    const auto sent = sha256(header.substr(scheme.size()));
    const auto want = sha256(token);
    return CRYPTO_memcmp(sent.data(), want.data(), want.size()) == 0;
}

void set_json(response& res, http::status status, const boost::json::value& body) {
    res.result(status);
    res.set(http::field::content_type, "application/json; charset=utf-8");
    res.body() = boost::json::serialize(body) + "\n";
}

// GET /readyz: 200 or 503, and each check by name ("ok" or why not):
// draining, the client listener, the legacy probe, the registered checks.
// Degradations (PostgreSQL down: fills go to the legacy) are listed but
// leave the replica ready.
void answer_readyz(server_state& state, response& res) {
    boost::json::object checks;
    boost::json::object degraded;
    bool ready = true;
    auto check = [&](const std::string& name, const std::string& reason) {
        ready = ready && reason.empty();
        checks[name] = reason.empty() ? std::string("ok") : reason;
    };
    check("draining", state.draining ? "draining" : "");
    check("listener", state.listening ? "" : "not accepting");
    if (state.cfg.upstream.health_check_interval.count() > 0) check("legacy", state.legacy.reason());
    for (const auto& c : state.admin.checks()) {
        if (!c.degraded) {
            check(c.name, c.reason);
        } else if (!c.reason.empty()) {
            degraded[c.name] = c.reason;
        }
    }
    set_json(res, ready ? http::status::ok : http::status::service_unavailable,
             boost::json::object{{"ready", ready}, {"checks", std::move(checks)}, {"degraded", std::move(degraded)}});
}

// POST /purge: the body (proxy/purge.hpp) carried out by the application.
void answer_purge(server_state& state, const request& req, response& res) {
    std::vector<std::string> routes;
    for (const auto& r : state.cfg.cache.routes) routes.push_back(r.name);
    auto parsed = parse_purge(req.body(), routes);
    if (!parsed.request) {
        set_json(res, http::status::bad_request, boost::json::object{{"error", parsed.error}});
        return;
    }
    const auto& p = *parsed.request;
    auto hit = state.admin.purge(p);
    if (!hit) {
        set_json(res, http::status::conflict,
                 boost::json::object{{"error", "nothing is cached (cache.enabled is false, no cached "
                                               "route, or auth.jwt_secret is empty)"}});
        return;
    }
    const auto mode = p.mode == cache::invalidation::soft ? "soft" : "hard";
    log::info("admin", "purge",
              {{"what", to_string(p.what)}, {"value", p.value}, {"mode", mode}, {"entries", *hit}});
    set_json(res, http::status::ok,
             boost::json::object{{"purged", to_string(p.what)}, {"value", p.value}, {"mode", mode}, {"entries", *hit}});
}

// POST /reload: the configuration file read again (proxy::application);
// 200 with what was applied and what needs a restart, 422 with the file's
// FILE:LINE:COL error (the configuration in effect stays).
void answer_reload(server_state& state, response& res) {
    auto outcome = state.admin.reload();
    if (!outcome) {
        set_json(res, http::status::conflict, boost::json::object{{"error", "reload is not available"}});
        return;
    }
    set_json(res, outcome->ok ? http::status::ok : http::status::unprocessable_entity, to_json(*outcome));
}

response answer(server_state& state, const request& req, bool body_too_large) {
    response res{http::status::ok, 11};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    const auto path = req.target().substr(0, req.target().find('?'));
    // The token and the configuration shown are the ones in effect (a reload may change them).
    const conf::config& live = state.settings.current();
    if (!is_liveness(path) && !authorized(live.admin.token, req)) {
        res.result(http::status::unauthorized);
        res.set(http::field::www_authenticate, R"(Bearer realm="sidecache-admin")");
        res.body() = "unauthorized: send Authorization: Bearer <admin.token>\n";
    } else if (body_too_large) {
        set_json(res, http::status::bad_request,
                 boost::json::object{{"error", fmt::format("the body is larger than {} bytes", max_purge_body)}});
    } else if (path == "/purge") {
        if (req.method() == http::verb::post) {
            answer_purge(state, req, res);
        } else {
            res.result(http::status::method_not_allowed);
            res.set(http::field::allow, "POST");
            res.body() = "method not allowed: POST /purge\n";
        }
    } else if (path == "/reload") {
        if (req.method() == http::verb::post) {
            answer_reload(state, res);
        } else {
            res.result(http::status::method_not_allowed);
            res.set(http::field::allow, "POST");
            res.body() = "method not allowed: POST /reload\n";
        }
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
        res.result(http::status::method_not_allowed);
        res.body() = "method not allowed\n";
    } else if (is_liveness(path)) {
        res.body() = "live\n";
    } else if (path == "/ready") {
        auto reason = state.draining ? std::string("draining") : state.admin.not_ready_reason();
        if (reason.empty()) {
            res.body() = "ready\n";
            for (const auto& d : state.admin.degradations()) res.body() += "degraded: " + d + "\n";
        } else {
            res.result(http::status::service_unavailable);
            res.body() = reason + "\n";
        }
    } else if (path == "/stats") {
        // The registry's series with a JSON path, then sections added to the admin registry.
        auto stats = state.metrics.json();
        for (auto& section : state.admin.stats()) stats[section.key()] = std::move(section.value());
        res.set(http::field::content_type, "application/json; charset=utf-8");
        res.body() = boost::json::serialize(stats);
    } else if (path == "/readyz") {
        answer_readyz(state, res);
    } else if (path == "/config") {
        set_json(res, http::status::ok, conf::to_json(live));
    } else if (path == "/metrics") {
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        res.body() = state.metrics.prometheus_text();
    } else {
        res.result(http::status::not_found);
        res.body() = "not found\n";
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    if (req.method() == http::verb::head) res.body().clear();
    return res;
}

// After an answer to a request whose body was not read: closing a socket
// with unread bytes sends a reset, which can destroy the answer in the
// client's receive queue before it is read. So: our side's FIN, then what
// the client still sends is read and dropped (bounded) until it closes.
net::awaitable<void> linger(beast::tcp_stream& stream, std::chrono::milliseconds timeout) {
    boost::system::error_code ignored;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    std::array<char, 4096> sink{};
    std::size_t dropped = 0;
    stream.expires_after(timeout);
    while (dropped < 1024 * 1024) {
        auto [ec, n] = co_await stream.async_read_some(net::buffer(sink), use_tuple);
        if (ec) break;
        dropped += n;
    }
}

}  // namespace

net::awaitable<void> run_admin_session(std::shared_ptr<server_state> state, net::ip::tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    const auto& cfg = state->cfg.server;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(max_purge_body);
        stream.expires_after(cfg.header_timeout);
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
        // A body over the limit gets its 400 (the head was read), then the
        // connection closes without reading the request further.
        const bool too_large = ec == http::error::body_limit;
        if (ec && !too_large) co_return;
        auto res = answer(*state, parser.get(), too_large);
        if (too_large) res.keep_alive(false);
        auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
        if (!wec && too_large) co_await linger(stream, cfg.header_timeout);
        if (wec || !res.keep_alive() || state->draining) co_return;
    }
}

}  // namespace sidecache::proxy
