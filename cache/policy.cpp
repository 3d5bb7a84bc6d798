#include "cache/policy.hpp"

#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <string_view>

namespace sidecache::cache {

namespace {

using boost::beast::iequals;

// Does a Cache-Control value hold the directive `name` (as a whole token)?
bool has_directive(std::string_view value, std::string_view name) {
    while (!value.empty()) {
        auto comma = value.find(',');
        auto item = value.substr(0, comma);
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
        auto eq = item.find('=');
        item = item.substr(0, eq);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (iequals(item, name)) return true;
    }
    return false;
}

}  // namespace

bool is_failure(const fill_result& result) {
    return result.failed || result.status == 0 || result.status >= 500;
}

bool is_storable(const fill_result& result, bool store_non_2xx) {
    if (is_failure(result)) return false;
    if (!store_non_2xx && (result.status < 200 || result.status > 299)) return false;
    if (result.status == 206) return false;  // a part is not the answer
    for (const auto& [name, value] : result.headers) {
        if (iequals(name, "set-cookie")) return false;
        if (iequals(name, "content-encoding") && !iequals(value, "identity")) return false;
        if (iequals(name, "cache-control") && has_directive(value, "no-store")) return false;
    }
    return true;
}

std::chrono::system_clock::time_point next_utc_midnight(std::chrono::system_clock::time_point t) {
    return std::chrono::floor<std::chrono::days>(t) + std::chrono::days{1};
}

std::chrono::steady_clock::time_point fresh_until(std::chrono::milliseconds ttl, bool utc_day_bound,
                                                  std::chrono::system_clock::time_point computed_at,
                                                  std::chrono::steady_clock::time_point steady_now,
                                                  std::chrono::system_clock::time_point system_now) {
    auto until = steady_now + ttl;
    if (utc_day_bound) {
        auto left = next_utc_midnight(computed_at) - system_now;
        auto bound = steady_now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                      std::max(left, std::chrono::system_clock::duration::zero()));
        until = std::min(until, bound);
    }
    return until;
}

freshness classify(std::chrono::steady_clock::time_point now,
                   std::chrono::steady_clock::time_point fresh_until,
                   std::chrono::milliseconds stale_while_revalidate,
                   std::chrono::milliseconds stale_if_error) {
    if (now < fresh_until) return freshness::fresh;
    if (now < fresh_until + stale_while_revalidate) return freshness::stale;
    if (now < fresh_until + stale_if_error) return freshness::stale_if_error;
    return freshness::dead;
}

freshness past_day_end(freshness state, std::chrono::system_clock::time_point computed_at,
                       std::chrono::system_clock::time_point system_now) {
    if (state == freshness::stale && system_now >= next_utc_midnight(computed_at))
        return freshness::stale_if_error;
    return state;
}

}  // namespace sidecache::cache
