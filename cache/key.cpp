#include "cache/key.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <algorithm>
#include <utility>

namespace sidecache::cache {

std::optional<std::string> normalize_query(std::string_view raw_query,
                                           const std::vector<std::string>& params) {
    if (params.empty() || raw_query.empty()) return std::string{};
    // Boost 1.81's params over a bare query string read the last value up to
    // the next NUL, past the view's end (into the rest of the request): parse
    // a NUL-terminated copy.
    const std::string query(raw_query);
    if (!boost::urls::parse_query(query)) return std::nullopt;
    boost::urls::encoding_opts opts;
    opts.space_as_plus = true;                   // form encoding: '+' is a space
    boost::urls::params_view view(query, opts);  // valid: does not throw

    std::vector<std::pair<std::string, std::string>> kept;
    for (auto param : view) {
        if (std::find(params.begin(), params.end(), param.key) == params.end()) continue;
        kept.emplace_back(std::move(param.key), std::move(param.value));
    }
    std::sort(kept.begin(), kept.end());

    std::string out;
    for (const auto& [name, value] : kept) {
        if (!out.empty()) out.push_back('&');
        out += boost::urls::encode(name, boost::urls::unreserved_chars);
        out.push_back('=');
        out += boost::urls::encode(value, boost::urls::unreserved_chars);
    }
    return out;
}

std::string key_query(std::string_view raw_query, const std::vector<std::string>& params) {
    if (auto q = normalize_query(raw_query, params)) return std::move(*q);
    return "!" + std::string(raw_query);
}

std::string make_key(std::string_view route, std::string_view user_id, std::string_view normalized_query) {
    std::string key;
    key.reserve(route.size() + user_id.size() + normalized_query.size() + 2);
    append_key(key, route, user_id, normalized_query);
    return key;
}

}  // namespace sidecache::cache
