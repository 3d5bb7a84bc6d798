// Fuzz target: the external agent API's JSON as external/client.cpp maps
// it (external/mapping): a configuration answer (parse_agent_config), and an
// /api/agents body whose agents are completed with their outcomes
// (collect_agent_ids, apply_outcomes), with JSON parsed as client.cpp does.
//
// Checks beyond the sanitizers: a mapped configuration has exactly its five
// keys; after apply_outcomes every agent object of `data` has a configStatus.
#include "external/mapping.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unordered_map>

using namespace sidecache;
namespace json = boost::json;

namespace {

void fail(const char* what) {
    std::fprintf(stderr, "external_mapping: %s\n", what);
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);

    const auto config = external::parse_agent_config(body);
    if (config && config->size() != 5) fail("a mapped configuration without its five keys");

    boost::system::error_code ec;
    json::value agents = json::parse(body, ec);
    if (ec) return 0;
    const auto ids = external::collect_agent_ids(agents);
    // Every other outcome kind in turn, the mapped configuration (if any) for ok and stale.
    std::unordered_map<std::string, external::agent_outcome> outcomes;
    constexpr external::config_status kinds[] = {external::config_status::ok, external::config_status::stale,
                                                 external::config_status::unavailable,
                                                 external::config_status::missing};
    for (std::size_t i = 0; i < ids.size(); ++i) {
        external::agent_outcome o{kinds[i % 4], std::nullopt};
        if (config) o.config = *config;
        outcomes.emplace(ids[i], std::move(o));
    }
    (void)external::apply_outcomes(agents, outcomes);
    if (auto* root = agents.if_object()) {
        if (auto* list = root->if_contains("data"); list && list->is_array()) {
            for (const auto& a : list->get_array())
                if (a.is_object() && !a.get_object().contains("configStatus")) fail("an agent without configStatus");
        }
    }
    (void)json::serialize(agents);
    return 0;
}
