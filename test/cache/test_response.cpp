// What the cache keeps of an answer: the contract's data.cacheInfo.cached
// says true on the copies served from the cache, false on the fill's own.
#include "cache/response.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace sidecache::cache;

namespace {

response_bytes with_body(const std::string& body) {
    return make_response_bytes("key", 200, {{"Content-Type", "application/json"}}, body);
}

}  // namespace

TEST_CASE("as_served_from_cache: cacheInfo.cached false becomes true, nothing else moves", "[unit]") {
    const auto [body, expected] = GENERATE(table<std::string, std::string>({
        // JSON.stringify (the legacy) and json_build_object (sidecache's SQL).
        {R"({"success":true,"data":{"x":1,"cacheInfo":{"cached":false,"calculatedAt":"t"}}})",
         R"({"success":true,"data":{"x":1,"cacheInfo":{"cached":true ,"calculatedAt":"t"}}})"},
        {R"({"success" : true, "data" : {"cacheInfo" : {"cached" : false, "calculatedAt" : "t"}}})",
         R"({"success" : true, "data" : {"cacheInfo" : {"cached" : true , "calculatedAt" : "t"}}})"},
        // A value that imitates it is a string: its quotes are escaped.
        {R"({"data":{"name":"\"cacheInfo\":{\"cached\":false","cacheInfo":{"cached":false}}})",
         R"({"data":{"name":"\"cacheInfo\":{\"cached\":false","cacheInfo":{"cached":true }}})"},
    }));
    const auto fill = with_body(body);
    const auto kept = as_served_from_cache(fill);
    CHECK(kept.body() == expected);
    CHECK(kept.head() == fill.head());  // Content-Length unchanged
    CHECK(kept.key() == fill.key());
    CHECK(fill.body() == body);  // the fill's own answer keeps false
    CHECK(kept.data != fill.data);
}

TEST_CASE("as_served_from_cache: no cacheInfo.cached false, the same bytes, no copy", "[unit]") {
    const auto body = GENERATE(as<std::string>{}, R"({"success":true,"data":[]})",
                               R"({"data":{"cacheInfo":{"cached":true,"calculatedAt":"t"}}})",
                               R"({"data":{"cacheInfo":{"calculatedAt":"t","cached":false}}})",
                               R"({"data":{"name":"\"cacheInfo\":{\"cached\":false"}})", "");
    const auto fill = with_body(body);
    const auto kept = as_served_from_cache(fill);
    CHECK(kept.data == fill.data);
    CHECK(kept.body() == body);
}
