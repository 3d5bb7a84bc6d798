#include "proxy/purge.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <utility>

namespace sidecache::proxy {

namespace {

constexpr std::array<std::pair<std::string_view, purge_selector>, 5> selectors{{
    {"user", purge_selector::user},
    {"route", purge_selector::route},
    {"agent", purge_selector::agent},
    {"tag", purge_selector::tag},
    {"all", purge_selector::all},
}};

constexpr std::string_view selector_list = R"("user", "route", "agent", "tag" or "all")";

std::string_view text(const boost::json::string& s) {
    return {s.data(), s.size()};
}

purge_parse fail(std::string message) {
    return {std::nullopt, std::move(message)};
}

std::string_view json_kind(const boost::json::value& v) {
    switch (v.kind()) {
    case boost::json::kind::string:
        return "a string";
    case boost::json::kind::bool_:
        return "a boolean";
    case boost::json::kind::null:
        return "null";
    case boost::json::kind::object:
        return "an object";
    case boost::json::kind::array:
        return "an array";
    default:
        return "a number";
    }
}

}  // namespace

std::string_view to_string(purge_selector s) {
    for (const auto& [name, value] : selectors)
        if (value == s) return name;
    return "?";
}

purge_parse parse_purge(std::string_view body, const std::vector<std::string>& routes) {
    if (body.size() > max_purge_body)
        return fail(fmt::format("the body is larger than {} bytes", max_purge_body));
    boost::system::error_code ec;
    auto json = boost::json::parse(body, ec);
    if (ec) return fail(fmt::format("the body is not valid JSON: {}", ec.message()));
    if (!json.is_object()) return fail(fmt::format("the body must be a JSON object, got {}", json_kind(json)));

    purge_request req;
    std::optional<std::string_view> chosen;
    for (const auto& field : json.as_object()) {
        const std::string_view key(field.key().data(), field.key().size());
        const auto& value = field.value();
        if (key == "mode") {
            if (!value.is_string()) return fail(fmt::format(R"("mode" must be a string, got {})", json_kind(value)));
            if (value.as_string() == "hard") {
                req.mode = cache::invalidation::hard;
            } else if (value.as_string() == "soft") {
                req.mode = cache::invalidation::soft;
            } else {
                return fail(fmt::format(R"("mode" must be "hard" or "soft", got "{}")", text(value.as_string())));
            }
            continue;
        }
        auto it = std::find_if(selectors.begin(), selectors.end(), [&](const auto& s) { return s.first == key; });
        if (it == selectors.end())
            return fail(fmt::format(R"(unknown key "{}": name one of {}, and optionally "mode")", key,
                                    selector_list));
        if (chosen)
            return fail(fmt::format(R"(name exactly one of {}: got "{}" and "{}")", selector_list, *chosen,
                                    it->first));
        chosen = it->first;
        req.what = it->second;
        if (req.what == purge_selector::all) {
            if (!value.is_bool() || !value.as_bool())
                return fail(fmt::format(R"("all" must be true, got {})",
                                        value.is_bool() ? "false" : json_kind(value)));
            continue;
        }
        if (!value.is_string())
            return fail(fmt::format(R"("{}" must be a string, got {})", it->first, json_kind(value)));
        req.value = std::string(text(value.as_string()));
        if (req.value.empty()) return fail(fmt::format(R"("{}" must not be empty)", it->first));
    }
    if (!chosen) return fail(fmt::format("name one of {}", selector_list));
    if (req.what == purge_selector::route && std::find(routes.begin(), routes.end(), req.value) == routes.end()) {
        std::string known;
        for (const auto& r : routes) known += (known.empty() ? "" : ", ") + r;
        return fail(fmt::format(R"(unknown route "{}" (cached routes: {}))", req.value,
                                known.empty() ? "none" : known));
    }
    return {std::move(req), {}};
}

}  // namespace sidecache::proxy
