#include "auth/error.hpp"

#include <string>

namespace sidecache::auth {

namespace {

class category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "sidecache.auth"; }
    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
        case error::missing:
            return "no Authorization header";
        case error::not_bearer:
            return "Authorization is not a Bearer token";
        case error::malformed:
            return "token is not header.claims.signature";
        case error::bad_base64:
            return "token part is not strict base64url";
        case error::bad_json:
            return "token header or claims are not a JSON object";
        case error::bad_alg:
            return "token alg is not HS256";
        case error::bad_signature:
            return "token signature does not match";
        case error::no_exp:
            return "token has no numeric exp";
        case error::expired:
            return "token expired";
        case error::not_yet_valid:
            return "token not valid yet (nbf)";
        case error::no_sub:
            return "token has no sub";
        case error::disabled:
            return "no JWT secret configured";
        }
        return "unknown auth error";
    }
};

}  // namespace

const boost::system::error_category& category() noexcept {
    static const category_impl instance;
    return instance;
}

}  // namespace sidecache::auth
