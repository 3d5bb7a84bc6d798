#pragma once
// POST /purge on the admin listener: its JSON body, parsed and checked. No
// I/O: application.cpp carries a request out (cache::service::invalidate,
// like a NOTIFY), proxy/admin_session.cpp answers.
//
//   {"user": "<id>"} | {"route": "<name>"} | {"agent": "<id>"} | {"tag": "<tag>"} | {"all": true}
//   plus optionally "mode": "hard" (default: evicted) or "soft" (served stale while refilled)

#include "cache/store.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sidecache::proxy {

enum class purge_selector {
    user,   // the entries of one user, and that user's fills in flight
    route,  // every entry of one cached route
    agent,  // entries whose answer names the agent; its external configuration too
    tag,    // entries carrying a tag as given ("user:u1", "agent:a1", "route:overview")
    all,    // every entry of every route
};

std::string_view to_string(purge_selector s);

struct purge_request {
    purge_selector what = purge_selector::all;
    std::string value;  // the id, name or tag; empty for all
    cache::invalidation mode = cache::invalidation::hard;
};

// The request, or the reason for a 400 (one sentence, no trailing newline).
struct purge_parse {
    std::optional<purge_request> request;
    std::string error;
};

// Largest body read; a larger one is refused before it is parsed.
inline constexpr std::size_t max_purge_body = 4096;

// `routes`: the configured cached route names ("route" must name one).
purge_parse parse_purge(std::string_view body, const std::vector<std::string>& routes);

}  // namespace sidecache::proxy
