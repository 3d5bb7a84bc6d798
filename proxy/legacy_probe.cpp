#include "proxy/legacy_probe.hpp"

#include "proxy/server_state.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace sidecache::proxy {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// One TCP connect (resolve included) within connect_timeout: "" or why not.
net::awaitable<std::string> probe_once(const conf::upstream_config& cfg) {
    auto ex = co_await net::this_coro::executor;
    const auto where = fmt::format("{}:{}", cfg.url.host, cfg.url.port);
    tcp::resolver resolver(ex);
    auto [rec, endpoints] = co_await resolver.async_resolve(cfg.url.host, std::to_string(cfg.url.port), use_tuple);
    if (rec) co_return fmt::format("resolve {}: {}", cfg.url.host, rec.message());
    beast::tcp_stream stream(ex);
    stream.expires_after(cfg.connect_timeout);
    auto [cec, ep] = co_await stream.async_connect(endpoints, use_tuple);
    if (cec == beast::error::timeout)
        co_return fmt::format("connect to {}: no answer within {} ms", where, cfg.connect_timeout.count());
    if (cec) co_return fmt::format("connect to {}: {}", where, cec.message());
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return std::string();
}

}  // namespace

net::awaitable<void> probe_legacy(std::shared_ptr<server_state> state) {
    const auto& cfg = state->cfg.upstream;
    net::steady_timer next(co_await net::this_coro::executor);
    while (!state->draining) {
        auto reason = co_await probe_once(cfg);
        state->legacy.record(std::move(reason));
        next.expires_after(cfg.health_check_interval);
        auto [ec] = co_await next.async_wait(use_tuple);
        if (ec) co_return;
    }
}

}  // namespace sidecache::proxy
