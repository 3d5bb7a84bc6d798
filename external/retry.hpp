#pragma once
// When to try an external call again, and after how long. Pure: the caller
// says what happened, how much of its deadline is left and draws the jitter.

#include "conf/config.hpp"

#include <optional>
#include <string_view>

namespace sidecache::external {

// What one try of an external call came to.
enum class try_outcome {
    ok,               // 200 with a usable body
    not_found,        // 404: a definitive answer
    client_error,     // another 4xx (401, 400, ...): retrying cannot help
    rate_limited,     // 429, maybe with Retry-After
    server_error,     // 5xx
    connect_error,    // resolve, connect or TLS handshake failed
    transport_error,  // the connection broke while writing or reading
    timeout,          // the try's own timeout (or what was left of the deadline) ran out
    bad_response,     // 200 whose body is not the JSON object expected
    rejected,         // not tried: the circuit breaker is open
};

std::string_view to_string(try_outcome o);

// Connect errors, timeouts, broken connections, 5xx and 429; never other 4xx.
bool is_retryable(try_outcome o);

// What the circuit breaker counts as the host failing: everything retryable
// (the host is down, slow or shedding load). 404 and other 4xx are the host
// answering, so they count as successes.
bool is_host_failure(try_outcome o);

struct retry_decision {
    bool retry = false;
    conf::duration delay{0};  // wait this long before the next try
};

// After `tries` tries (>= 1), the last of which came to `outcome`:
// retry while tries < profile.attempts and the outcome is retryable, after
// backoff_delay(profile, tries, unit), or after Retry-After when the host
// sent one and it is longer. Never when the wait would reach `remaining`
// (what is left of the caller's deadline): the next try would have no time.
retry_decision decide_retry(const conf::retry_profile& profile, try_outcome outcome, unsigned tries,
                            std::optional<conf::duration> retry_after, conf::duration remaining, double unit);

// A Retry-After header value in delta-seconds ("3"); nullopt for anything
// else (HTTP-dates are not worth honouring for a sub-second deadline: the
// jittered backoff applies instead).
std::optional<conf::duration> parse_retry_after(std::string_view value);

}  // namespace sidecache::external

namespace sidecache::external {

// The outcome of a try that got an HTTP answer with this status: 200 ok,
// 404 not_found, 429 rate_limited, 5xx server_error, anything else client_error.
try_outcome outcome_of_status(unsigned status);

}  // namespace sidecache::external
