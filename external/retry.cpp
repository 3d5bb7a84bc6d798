#include "external/retry.hpp"

#include "external/backoff.hpp"

#include <algorithm>
#include <charconv>

namespace sidecache::external {

std::string_view to_string(try_outcome o) {
    switch (o) {
    case try_outcome::ok:
        return "ok";
    case try_outcome::not_found:
        return "not_found";
    case try_outcome::client_error:
        return "client_error";
    case try_outcome::rate_limited:
        return "rate_limited";
    case try_outcome::server_error:
        return "server_error";
    case try_outcome::connect_error:
        return "connect_error";
    case try_outcome::transport_error:
        return "transport_error";
    case try_outcome::timeout:
        return "timeout";
    case try_outcome::bad_response:
        return "bad_response";
    case try_outcome::rejected:
        return "rejected";
    }
    return "unknown";
}

bool is_retryable(try_outcome o) {
    switch (o) {
    case try_outcome::rate_limited:
    case try_outcome::server_error:
    case try_outcome::connect_error:
    case try_outcome::transport_error:
    case try_outcome::timeout:
        return true;
    default:
        return false;
    }
}

bool is_host_failure(try_outcome o) {
    return is_retryable(o);
}

retry_decision decide_retry(const conf::retry_profile& profile, try_outcome outcome, unsigned tries,
                            std::optional<conf::duration> retry_after, conf::duration remaining,
                            double unit) {
    if (!is_retryable(outcome) || tries >= profile.attempts) return {};
    auto delay = backoff_delay(profile, tries, unit);
    if (outcome == try_outcome::rate_limited && retry_after) delay = std::max(delay, *retry_after);
    if (delay >= remaining) return {};
    return {true, delay};
}

std::optional<conf::duration> parse_retry_after(std::string_view value) {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (value.empty() || value.size() > 9) return std::nullopt;
    long seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc{} || end != value.data() + value.size() || seconds < 0) return std::nullopt;
    return conf::duration{seconds * 1000};
}

}  // namespace sidecache::external

namespace sidecache::external {

try_outcome outcome_of_status(unsigned status) {
    if (status == 200) return try_outcome::ok;
    if (status == 404) return try_outcome::not_found;
    if (status == 429) return try_outcome::rate_limited;
    if (status >= 500 && status <= 599) return try_outcome::server_error;
    return try_outcome::client_error;
}

}  // namespace sidecache::external
