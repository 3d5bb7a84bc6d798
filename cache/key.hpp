#pragma once
// The cache key: route name + verified user id + normalized query. Pure
// functions; never sees the Authorization header.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sidecache::cache {

// The query parameters of `raw_query` (without '?') whose names are in
// `params`, decoded, sorted by name then value, re-encoded as
// "a=1&b=x%20y". Others are dropped. nullopt: the query cannot be parsed
// (the request should be forwarded, not cached). No parameter named: "".
std::optional<std::string> normalize_query(std::string_view raw_query,
                                           const std::vector<std::string>& params);

// The query's part of the key: normalize_query(), or "!" + the raw query
// when it cannot be parsed (keyed verbatim: such requests still share an
// entry only when byte-identical; "!" is never percent-encoded output).
std::string key_query(std::string_view raw_query, const std::vector<std::string>& params);

// Appends route '\n' user '\n' query to `out` (the query, being
// percent-encoded, has no '\n', so the key is unambiguous).
template <class Buffer>
void append_key(Buffer& out, std::string_view route, std::string_view user_id,
                std::string_view normalized_query) {
    out.append(route.data(), route.data() + route.size());
    out.push_back('\n');
    out.append(user_id.data(), user_id.data() + user_id.size());
    out.push_back('\n');
    out.append(normalized_query.data(), normalized_query.data() + normalized_query.size());
}

std::string make_key(std::string_view route, std::string_view user_id, std::string_view normalized_query);

}  // namespace sidecache::cache
