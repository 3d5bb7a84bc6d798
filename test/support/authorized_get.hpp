#pragma once
// A GET sent as a signed-in user of the dashboard (a bearer token minted
// with the legacy's HS256 secret), and the parts of the answer the
// end-to-end tests compare.

#include "auth/verifier.hpp"
#include "support/test_client.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <cstdint>
#include <ctime>
#include <string>

namespace sidecache::test {

struct answer {
    unsigned status = 0;
    std::string body;
    std::string x_cache;
};

// A token for `user`, valid for an hour.
inline std::string token_for(const std::string& user, const std::string& secret) {
    const auto exp = std::time(nullptr) + 3600;
    return auth::sign_hs256(R"({"sub":")" + user + R"(","exp":)" + std::to_string(exp) + "}", secret);
}

inline answer authorized_get(test_client& client, const std::string& target, const std::string& token) {
    client.send(get_request(target, "Authorization: Bearer " + token + "\r\n"));
    auto r = client.read_response();
    REQUIRE(r.has_value());
    return {r->status, r->body, r->header("X-Cache")};
}

// An overview answer's data.credits.current.
inline std::int64_t credits_of(const answer& a) {
    return boost::json::parse(a.body).at("data").at("credits").at("current").to_number<std::int64_t>();
}

}  // namespace sidecache::test
