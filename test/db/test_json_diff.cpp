// The comparison the equivalence test relies on must see every kind of difference.
#include "db/json_diff.hpp"

#include <catch2/catch.hpp>

using sidecache::test::json_diff;
namespace json = boost::json;

TEST_CASE("json_diff finds the first differing path, numbers by value [unit]", "[unit]") {
    auto d = [](const char* a, const char* b) { return json_diff(json::parse(a), json::parse(b)); };
    CHECK_FALSE(d(R"({"a":[1,2.5,{"b":null}]})", R"({"a":[1.0,2.50,{"b":null}]})"));
    CHECK(d(R"({"a":[1,2]})", R"({"a":[1,3]})").value().starts_with("a[1]"));
    CHECK(d(R"({"a":{"b":"x"}})", R"({"a":{"b":"y"}})").value().starts_with("a.b"));
    CHECK(d(R"({"a":1})", R"({"a":1,"c":2})").value().starts_with("c"));
    CHECK(d(R"({"a":[1]})", R"({"a":[1,2]})").value().find("array sizes") != std::string::npos);
    CHECK(d(R"({"a":null})", R"({"a":0})").has_value());
    CHECK(d(R"({"a":"1"})", R"({"a":1})").has_value());
    auto skip = [](const std::string& p) { return p == "data.cacheInfo"; };
    CHECK_FALSE(json_diff(json::parse(R"({"data":{"cacheInfo":1,"x":2}})"),
                          json::parse(R"({"data":{"cacheInfo":3,"x":2}})"), skip));
}
