// Fuzz target: a client's request head and everything it drives, in the
// order proxy/session.cpp and proxy/cached_routes.cpp apply it: Beast's
// parser with the server's limits, the refusals (ambiguous framing, no
// Host), then for a GET/HEAD of a cached route the token (auth::verifier),
// the normalized query and the cache key; and the head forwarded upstream.
//
// Checks beyond the sanitizers: the forwarded head is written whole however
// small the first buffer was, and is itself a request head that Beast
// parses back to the same method and target.
#include "auth/verifier.hpp"
#include "cache/key.hpp"
#include "conf/loader.hpp"
#include "sync/time_source.hpp"
#include "upstream/head_rules.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <vector>

using namespace sidecache;
namespace http = boost::beast::http;

namespace {

// The example configuration with a secret (the corpus's tokens are signed
// with it) and one route whose key has query parameters.
const conf::config& fuzz_config() {
    static const conf::config config = [] {
        auto c = conf::load_file(SIDECACHE_SOURCE_DIR "/conf/sidecache.example.yaml",
                                 [](std::string_view name) -> std::optional<std::string> {
                                     if (name == "JWT_SECRET") return "fuzz-secret";
                                     return std::nullopt;
                                 });
        conf::route_config search;
        search.name = "search";
        search.path = "/api/search";
        search.query_params = {"from", "to", "page", "q"};
        c.cache.routes.push_back(search);
        return c;
    }();
    return config;
}

void fail(const char* what) {
    std::fprintf(stderr, "request_head: %s\n", what);
    std::abort();
}

// What cached_routes::handle() does with a GET/HEAD without body.
void cache_part(const conf::config& config, const http::request_header<>& req) {
    const std::string_view target = req.target();
    const auto question = target.find('?');
    const auto path = target.substr(0, question);
    const conf::route_config* route = nullptr;
    for (const auto& r : config.cache.routes)
        if (r.path == path) route = &r;
    if (!route) return;

    // A fresh verifier per input: its token cache would otherwise make the
    // outcome depend on earlier inputs. Twice: the second answer is cached.
    sync::manual_time_source clock;
    auth::verifier identity{config.auth, clock};
    const auto authorization = req[http::field::authorization];
    auto user = identity.verify(authorization);
    auto again = identity.verify(authorization);
    if (user.has_value() != again.has_value()) fail("a cached token answers otherwise");
    if (!user) return;
    if ((*user)->user_id != (*again)->user_id) fail("a cached token names another user");

    const auto raw_query = question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
    const auto query = cache::key_query(raw_query, route->query_params);
    const auto key = cache::make_key(route->name, (*user)->user_id, query);
    if (key.size() != route->name.size() + (*user)->user_id.size() + query.size() + 2) fail("key size");
}

// What forward() sends upstream: written into a small buffer first, then
// into one of the size the writer asked for.
void forward_part(http::request_header<>& req, bool chunked) {
    if (upstream::connection_names_fields(req)) upstream::strip_hop_by_hop(req);
    char small[64];
    upstream::head_writer first{small};
    upstream::write_request_head(req, "203.0.113.7", chunked, first);
    std::vector<char> large(first.size());
    upstream::head_writer whole{large};
    upstream::write_request_head(req, "203.0.113.7", chunked, whole);
    if (!whole.ok() || whole.size() != first.size()) fail("the forwarded head does not fit the size it asked for");

    // The body is the upstream's to limit: any Content-Length the server's
    // max_body_bytes let through is forwarded as it came (Beast's default
    // 1 MiB limit refused 9999999 here, an error of this check alone).
    http::request_parser<http::empty_body> back;
    back.header_limit(static_cast<std::uint32_t>(whole.size()) + 1);
    back.body_limit(std::numeric_limits<std::uint64_t>::max());
    boost::system::error_code ec;
    back.put(boost::asio::buffer(whole.bytes().data(), whole.bytes().size()), ec);
    if (ec && ec != http::error::need_more) {
        std::fprintf(stderr, "%s\n%.*s\n", ec.message().c_str(), static_cast<int>(whole.size()),
                     whole.bytes().data());
        fail("the forwarded head does not parse");
    }
    if (!back.is_header_done()) fail("the forwarded head is incomplete");
    if (back.get().method_string() != req.method_string() || back.get().target() != req.target())
        fail("the forwarded head has another method or target");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto& config = fuzz_config();
    // As run_session(): a fresh parser per message, the server's limits; a
    // head is parsed without its body (eager off by default).
    http::request_parser<http::buffer_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(config.server.max_header_bytes));
    parser.body_limit(config.server.max_body_bytes);
    boost::system::error_code ec;
    parser.put(boost::asio::buffer(data, size), ec);
    if (ec || !parser.is_header_done()) return 0;

    auto& req = parser.get();
    // refusal_for(): refused heads go no further.
    if (upstream::ambiguous_framing(req)) return 0;
    if (req.version() >= 11 && req.find(http::field::host) == req.end()) return 0;

    const auto method = req.method();
    if (parser.is_done() && (method == http::verb::get || method == http::verb::head)) cache_part(config, req);
    forward_part(req, parser.chunked());
    return 0;
}
