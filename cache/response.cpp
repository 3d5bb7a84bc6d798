#include "cache/response.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>

namespace sidecache::cache {

namespace {

using boost::beast::iequals;

bool dropped(std::string_view name) {
    // Set-Cookie is kept: an answer carrying it is never stored (policy.cpp),
    // so it only reaches the request whose fill it was (and that fill's
    // coalesced waiters, the same user's), as the legacy sent it.
    static constexpr std::array<std::string_view, 12> names{
        "connection", "keep-alive",   "proxy-connection", "transfer-encoding",
        "te",         "trailer",      "upgrade",          "content-length",
        "age",        "cache-status", "x-cache",          "proxy-authenticate"};
    return std::any_of(names.begin(), names.end(), [&](std::string_view n) { return iequals(n, name); });
}

// A header field value must not carry CR or LF (response splitting).
bool clean(std::string_view s) {
    return s.find_first_of("\r\n") == std::string_view::npos;
}

// The per-response header block of one answer, with the blank line.
struct answer_owner {
    response_bytes response;
    std::array<char, 192> block;
    std::size_t block_size = 0;
};

}  // namespace

response_bytes make_response_bytes(std::string_view key, unsigned status, const header_list& headers,
                                   std::string_view body) {
    fmt::memory_buffer head;
    auto reason = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
    fmt::format_to(std::back_inserter(head), "HTTP/1.1 {} {}\r\n", status,
                   std::string_view{reason.data(), reason.size()});
    for (const auto& [name, value] : headers) {
        if (name.empty() || dropped(name) || !clean(name) || !clean(value)) continue;
        fmt::format_to(std::back_inserter(head), "{}: {}\r\n", name, value);
    }
    fmt::format_to(std::back_inserter(head), "Content-Length: {}\r\n", body.size());

    response_bytes out;
    out.key_size = static_cast<std::uint32_t>(key.size());
    out.head_size = static_cast<std::uint32_t>(head.size());
    out.body_size = static_cast<std::uint32_t>(body.size());
    out.status = status;
    auto data = std::make_shared_for_overwrite<char[]>(out.size());
    // std::copy, not memcpy: an empty key or body may have a null data().
    char* p = data.get();
    p = std::copy(key.begin(), key.end(), p);
    p = std::copy(head.begin(), head.end(), p);
    std::copy(body.begin(), body.end(), p);
    out.data = std::move(data);
    return out;
}

namespace {

// Where `"cached": false` of the body's "cacheInfo" object starts its
// `false`, as JSON.stringify ("cacheInfo":{"cached":false) or PostgreSQL's
// json_build_object ("cacheInfo" : {"cached" : false) writes it; npos if
// the body has none.
std::size_t cached_false_at(std::string_view body) {
    constexpr std::string_view object = "\"cacheInfo\"";
    constexpr std::string_view member = "\"cached\"";
    const auto skip_space = [&](std::size_t i) {
        while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r'))
            ++i;
        return i;
    };
    const auto expect = [&](std::size_t i, std::string_view what) {
        i = skip_space(i);
        return body.substr(i, what.size()) == what ? i + what.size() : std::string_view::npos;
    };
    for (auto at = body.rfind(object); at != std::string_view::npos;
         at = at == 0 ? std::string_view::npos : body.rfind(object, at - 1)) {
        auto i = expect(at + object.size(), ":");
        if (i != std::string_view::npos) i = expect(i, "{");
        if (i != std::string_view::npos) i = expect(i, member);
        if (i != std::string_view::npos) i = expect(i, ":");
        if (i == std::string_view::npos) continue;
        i = skip_space(i);
        if (body.substr(i, 5) == "false") return i;
    }
    return std::string_view::npos;
}

}  // namespace

response_bytes as_served_from_cache(const response_bytes& response) {
    const auto at = cached_false_at(response.body());
    if (at == std::string_view::npos) return response;
    response_bytes out = response;
    auto data = std::make_shared_for_overwrite<char[]>(response.size());
    std::copy(response.data.get(), response.data.get() + response.size(), data.get());
    std::copy_n("true ", 5, data.get() + response.key_size + response.head_size + at);
    out.data = std::move(data);
    return out;
}

response_bytes make_error_response(unsigned status, std::string_view code, std::string_view message) {
    auto body = fmt::format(R"({{"success":false,"error":{{"code":{},"message":{}}}}})",
                            boost::json::serialize(boost::json::string(code)),
                            boost::json::serialize(boost::json::string(message)));
    header_list headers{{"Content-Type", "application/json; charset=utf-8"}, {"Cache-Control", "no-store"}};
    return make_response_bytes({}, status, headers, body);
}

std::string_view to_string(answer_kind kind) {
    switch (kind) {
    case answer_kind::hit:
        return "hit";
    case answer_kind::hit_l2:
        return "hit_l2";
    case answer_kind::stale:
        return "stale";
    case answer_kind::stale_if_error:
        return "stale_if_error";
    case answer_kind::stale_timeout:
        return "stale_timeout";
    case answer_kind::miss_stored:
        return "miss_stored";
    case answer_kind::miss:
        return "miss";
    case answer_kind::collapsed:
        return "collapsed";
    case answer_kind::timeout:
        return "timeout";
    case answer_kind::overloaded:
        return "overloaded";
    case answer_kind::fill_error:
        return "fill_error";
    case answer_kind::backed_off:
        return "backed_off";
    }
    return "unknown";
}

std::string_view cache_status(answer_kind kind) {
    switch (kind) {
    case answer_kind::hit:
        return "sidecache; hit";
    case answer_kind::hit_l2:
        return "sidecache; hit; detail=l2";
    case answer_kind::stale:
        return "sidecache; hit; fwd=stale";
    case answer_kind::stale_if_error:
        return "sidecache; hit; fwd=stale; detail=stale-if-error";
    case answer_kind::stale_timeout:
        return "sidecache; hit; fwd=stale; detail=wait-timeout";
    case answer_kind::miss_stored:
        return "sidecache; fwd=miss; stored";
    case answer_kind::miss:
        return "sidecache; fwd=miss";
    case answer_kind::collapsed:
        return "sidecache; fwd=miss; collapsed";
    case answer_kind::timeout:
        return "sidecache; fwd=miss; detail=wait-timeout";
    case answer_kind::overloaded:
        return "sidecache; fwd=miss; detail=too-many-waiters";
    case answer_kind::fill_error:
        return "sidecache; fwd=miss; detail=fill-error";
    case answer_kind::backed_off:
        return "sidecache; detail=fill-backoff";
    }
    return "sidecache";
}

std::string_view x_cache(answer_kind kind) {
    switch (kind) {
    case answer_kind::hit:
    case answer_kind::hit_l2:
        return "HIT";
    case answer_kind::stale:
    case answer_kind::stale_if_error:
    case answer_kind::stale_timeout:
        return "STALE";
    default:
        return "MISS";
    }
}

cache_answer render(const response_bytes& response, answer_kind kind, std::chrono::seconds age,
                    bool keep_alive) {
    auto owner = std::make_shared<answer_owner>();
    owner->response = response;
    // Written by hand, not with fmt: this runs on every hit, and the fields
    // are bounded (the longest block is ~130 bytes of the 192).
    char* p = owner->block.data();
    const auto put = [&p](std::string_view s) { p = std::copy(s.begin(), s.end(), p); };
    put("Age: ");
    p = std::to_chars(p, p + 20, std::max<std::int64_t>(0, age.count())).ptr;
    put("\r\nCache-Status: ");
    put(cache_status(kind));
    put("\r\nX-Cache: ");
    put(x_cache(kind));
    put(keep_alive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
    owner->block_size = static_cast<std::size_t>(p - owner->block.data());

    cache_answer answer;
    answer.keep_alive = keep_alive;
    answer.status = response.status;
    answer.kind = kind;
    answer.buffers.reserve(3);
    auto head = response.head();
    auto body = response.body();
    answer.buffers.emplace_back(head.data(), head.size());
    answer.buffers.emplace_back(owner->block.data(), owner->block_size);
    if (!body.empty()) answer.buffers.emplace_back(body.data(), body.size());
    answer.owner = std::move(owner);
    return answer;
}

std::chrono::seconds age_of(std::chrono::system_clock::time_point computed_at,
                            std::chrono::system_clock::time_point now) {
    if (now <= computed_at) return std::chrono::seconds{0};
    return std::chrono::floor<std::chrono::seconds>(now - computed_at);
}

}  // namespace sidecache::cache
