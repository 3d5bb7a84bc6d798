#pragma once
// Pure mapping between the external agent API and the /api/agents body:
// the `elevenLabs` object from an external answer (elevenlabs.md), the ids
// an agents body asks for, and the body completed with each agent's outcome.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sidecache::external {

// `configStatus` of one agent in GET /api/agents (api.md).
enum class config_status {
    ok,           // fetched now (or fresh in the per-agent cache)
    stale,        // the fetch failed; the last good configuration is served
    unavailable,  // the fetch failed (timeout, 5xx, 429, refused, bad JSON, breaker open)
    missing,      // the external API answered 404
    none,         // the agent has no elevenLabsAgentId: nothing fetched
};

std::string_view to_string(config_status s);

// An agent's part of the answer: its status and, for ok and stale, the
// mapped `elevenLabs` object.
struct agent_outcome {
    config_status status = config_status::unavailable;
    std::optional<boost::json::object> config;
};

// "stale" and "unavailable" make the whole answer degraded: it is cached
// briefly and refreshed in the background.
inline bool is_degraded(config_status s) {
    return s == config_status::stale || s == config_status::unavailable;
}

// {"name", "voiceId", "language", "firstMessage", "llm"} from the external
// answer, in that order; a field absent (or a path through a non-object) is null.
boost::json::object map_agent_config(const boost::json::object& external);

// Parses a 200 body and maps it; an error when it is not a JSON object.
boost::system::result<boost::json::object> parse_agent_config(std::string_view body);

// The distinct non-empty string `elevenLabsAgentId`s of the agents in
// {"success": true, "data": [...]}, in order of first appearance. Empty
// when the body has no such array.
std::vector<std::string> collect_agent_ids(const boost::json::value& body);

// Sets `elevenLabs` and `configStatus` of every agent in `data` (in place,
// keeping the position of keys already there): from `outcomes` by id for
// agents with an id (an id absent from `outcomes` is "unavailable"), "none"
// with null for those without. Returns whether any agent is degraded.
bool apply_outcomes(boost::json::value& body, const std::unordered_map<std::string, agent_outcome>& outcomes);

}  // namespace sidecache::external
