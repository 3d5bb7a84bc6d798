#pragma once
// The first difference between two JSON documents, as a path ("data.kpis[3].value"),
// comparing numbers by value (3.5 == 3.50, 50 == 50.0) and objects by key set.
// `skip(path)` true: that member is not compared.

#include <boost/json.hpp>

#include <functional>
#include <optional>
#include <string>

namespace sidecache::test {

inline std::optional<std::string> json_diff(const boost::json::value& a, const boost::json::value& b,
                                            const std::function<bool(const std::string&)>& skip = {},
                                            const std::string& path = "") {
    namespace json = boost::json;
    auto here = [&](std::string what) { return (path.empty() ? std::string("$") : path) + ": " + what; };
    auto is_num = [](const json::value& v) { return v.is_int64() || v.is_uint64() || v.is_double(); };
    if (is_num(a) && is_num(b)) {
        if (a.to_number<double>() == b.to_number<double>()) return std::nullopt;
        return here(json::serialize(a) + " != " + json::serialize(b));
    }
    if (a.kind() != b.kind()) return here(json::serialize(a) + " != " + json::serialize(b));
    if (a.is_object()) {
        const auto& oa = a.as_object();
        const auto& ob = b.as_object();
        for (const auto& [k, v] : oa) {
            auto p = path.empty() ? std::string(k) : path + "." + std::string(k);
            if (skip && skip(p)) continue;
            auto it = ob.find(k);
            if (it == ob.end()) return p + ": missing on the right";
            if (auto d = json_diff(v, it->value(), skip, p)) return d;
        }
        for (const auto& [k, v] : ob) {
            auto p = path.empty() ? std::string(k) : path + "." + std::string(k);
            if (!(skip && skip(p)) && !oa.contains(k)) return p + ": missing on the left";
        }
        return std::nullopt;
    }
    if (a.is_array()) {
        const auto& xa = a.as_array();
        const auto& xb = b.as_array();
        for (std::size_t i = 0; i < xa.size() && i < xb.size(); ++i)
            if (auto d = json_diff(xa[i], xb[i], skip, path + "[" + std::to_string(i) + "]")) return d;
        if (xa.size() != xb.size())
            return here("array sizes " + std::to_string(xa.size()) + " != " + std::to_string(xb.size()));
        return std::nullopt;
    }
    if (a == b) return std::nullopt;
    return here(json::serialize(a) + " != " + json::serialize(b));
}

}  // namespace sidecache::test
