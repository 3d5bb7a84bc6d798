#include "external/mapping.hpp"

#include <boost/json/parse.hpp>

#include <unordered_set>

namespace sidecache::external {

namespace json = boost::json;

std::string_view to_string(config_status s) {
    switch (s) {
    case config_status::ok:
        return "ok";
    case config_status::stale:
        return "stale";
    case config_status::unavailable:
        return "unavailable";
    case config_status::missing:
        return "missing";
    case config_status::none:
        return "none";
    }
    return "unavailable";
}

namespace {

// The value at `path` below `root`, or null when a step is absent or not an object.
json::value field_at(const json::object& root, std::initializer_list<std::string_view> path) {
    const json::object* at = &root;
    std::size_t left = path.size();
    for (auto key : path) {
        auto it = at->find(key);
        if (it == at->end()) return nullptr;
        if (--left == 0) return it->value();
        at = it->value().if_object();
        if (!at) return nullptr;
    }
    return nullptr;
}

const json::array* agents_array(const json::value& body) {
    const auto* root = body.if_object();
    if (!root) return nullptr;
    auto it = root->find("data");
    return it == root->end() ? nullptr : it->value().if_array();
}

}  // namespace

json::object map_agent_config(const json::object& external) {
    json::object out;
    out.reserve(5);
    out["name"] = field_at(external, {"name"});
    out["voiceId"] = field_at(external, {"conversation_config", "tts", "voice_id"});
    out["language"] = field_at(external, {"conversation_config", "agent", "language"});
    out["firstMessage"] = field_at(external, {"conversation_config", "agent", "first_message"});
    out["llm"] = field_at(external, {"conversation_config", "agent", "prompt", "llm"});
    return out;
}

boost::system::result<json::object> parse_agent_config(std::string_view body) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) return ec;
    if (!v.is_object()) return boost::system::error_code(json::error::not_object);
    return map_agent_config(v.get_object());
}

std::vector<std::string> collect_agent_ids(const json::value& body) {
    std::vector<std::string> ids;
    const auto* agents = agents_array(body);
    if (!agents) return ids;
    std::unordered_set<std::string_view> seen;
    for (const auto& a : *agents) {
        const auto* agent = a.if_object();
        if (!agent) continue;
        auto it = agent->find("elevenLabsAgentId");
        if (it == agent->end() || !it->value().is_string() || it->value().get_string().empty()) continue;
        std::string_view id = it->value().get_string();
        if (seen.insert(id).second) ids.emplace_back(id);
    }
    return ids;
}

bool apply_outcomes(json::value& body, const std::unordered_map<std::string, agent_outcome>& outcomes) {
    auto* root = body.if_object();
    if (!root) return false;
    auto data = root->find("data");
    if (data == root->end() || !data->value().is_array()) return false;
    bool degraded = false;
    for (auto& a : data->value().get_array()) {
        auto* agent = a.if_object();
        if (!agent) continue;
        auto it = agent->find("elevenLabsAgentId");
        agent_outcome none{config_status::none, std::nullopt};
        const agent_outcome* outcome = &none;
        agent_outcome unavailable{config_status::unavailable, std::nullopt};
        if (it != agent->end() && it->value().is_string() && !it->value().get_string().empty()) {
            auto found = outcomes.find(std::string(it->value().get_string()));
            outcome = found == outcomes.end() ? &unavailable : &found->second;
        }
        // operator[] keeps an existing key where it is and appends a new one.
        if (outcome->config &&
            (outcome->status == config_status::ok || outcome->status == config_status::stale))
            (*agent)["elevenLabs"] = *outcome->config;
        else
            (*agent)["elevenLabs"] = nullptr;
        (*agent)["configStatus"] = to_string(outcome->status);
        degraded = degraded || is_degraded(outcome->status);
    }
    return degraded;
}

}  // namespace sidecache::external
