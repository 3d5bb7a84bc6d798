#pragma once
// Verified identity: `Authorization: Bearer <JWT>`, HS256 only. A request
// that cannot be verified is never served from or stored in the cache (the
// proxy forwards it unchanged and the legacy answers 401/403).

#include "auth/error.hpp"
#include "conf/config.hpp"
#include "sync/time_source.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sidecache::auth {

struct verified_user {
    std::string user_id;                            // the `sub` claim
    std::chrono::system_clock::time_point expires;  // exp
};

class verifier {
public:
    // `config` and `clock` must outlive the verifier. Thread-safe.
    verifier(const conf::auth_config& config, const sync::time_source& clock);

    // `authorization` is the header's value. A token verified before is
    // answered from a bounded cache, never past its exp.
    boost::system::result<std::shared_ptr<const verified_user>> verify(std::string_view authorization) const;

    std::size_t cached_tokens() const;
    // Sweeps of the whole cache for expired tokens so far (at most one per
    // quarter of token_cache_entries inserted while full).
    std::size_t cache_sweeps() const;

private:
    boost::system::result<std::shared_ptr<const verified_user>> verify_token(std::string_view token) const;
    void make_room(std::chrono::system_clock::time_point now) const;  // mutex_ held

    struct token_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };

    const conf::auth_config& config_;
    const sync::time_source& clock_;
    mutable std::mutex mutex_;
    mutable std::unordered_map<std::string, std::shared_ptr<const verified_user>, token_hash, std::equal_to<>>
        tokens_;
    mutable std::size_t inserted_since_sweep_ = 0;
    mutable std::size_t sweeps_ = 0;
    mutable std::uint64_t victim_seed_ = 0x9e3779b97f4a7c15ULL;  // picks the bucket a token is dropped from
};

// Strict base64url (RFC 4648 §5, no padding, unused bits zero).
std::optional<std::string> base64url_decode(std::string_view in);
std::string base64url_encode(std::string_view in);

// A compact JWS of `claims_json` with header {"alg":"HS256","typ":"JWT"}.
std::string sign_hs256(std::string_view claims_json, std::string_view secret);
// As above with a header of your own (tests of alg confusion).
std::string sign_hs256(std::string_view header_json, std::string_view claims_json, std::string_view secret);

}  // namespace sidecache::auth
