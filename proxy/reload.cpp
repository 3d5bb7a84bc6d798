#include "proxy/reload.hpp"

#include <boost/json/array.hpp>

namespace sidecache::proxy {

namespace {

boost::json::array strings(const std::vector<std::string>& v) {
    boost::json::array out;
    for (const auto& s : v) out.emplace_back(s);
    return out;
}

}  // namespace

boost::json::object to_json(const reload_outcome& r) {
    if (!r.ok) return {{"reloaded", false}, {"error", r.error}};
    return {{"reloaded", true}, {"applied", strings(r.applied)}, {"needs_restart", strings(r.needs_restart)}};
}

}  // namespace sidecache::proxy
