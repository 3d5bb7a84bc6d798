#include "proxy/server_state.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>

namespace sidecache::proxy {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

http::response<http::string_body> answer(server_state& state, const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    const auto path = req.target().substr(0, req.target().find('?'));
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
        res.result(http::status::method_not_allowed);
        res.body() = "method not allowed\n";
    } else if (path == "/live") {
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

}  // namespace

net::awaitable<void> run_admin_session(std::shared_ptr<server_state> state, net::ip::tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    const auto& cfg = state->cfg.server;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(4096);
        stream.expires_after(cfg.header_timeout);
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
        if (ec) co_return;
        auto res = answer(*state, parser.get());
        auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
        if (wec || !res.keep_alive() || state->draining) co_return;
    }
}

}  // namespace sidecache::proxy
