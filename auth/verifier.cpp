#include "auth/verifier.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>

namespace sidecache::auth {

namespace {

// 8-4-4-4-12 hex digits, any case.
bool is_uuid_shaped(std::string_view t) {
    if (t.size() != 36) return false;
    for (std::size_t i = 0; i < t.size(); ++i) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? t[i] != '-' : !std::isxdigit(static_cast<unsigned char>(t[i]))) return false;
    }
    return true;
}

constexpr std::array<signed char, 256> decode_table = [] {
    std::array<signed char, 256> t{};
    for (auto& v : t) v = -1;
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<signed char>(i);
    return t;
}();

std::array<unsigned char, 32> hmac_sha256(std::string_view data, std::string_view secret) {
    std::array<unsigned char, 32> out{};
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
    return out;
}

// A JSON NumericDate as seconds since the epoch.
std::optional<double> numeric_date(const boost::json::value* v) {
    if (!v) return std::nullopt;
    if (v->is_int64()) return static_cast<double>(v->get_int64());
    if (v->is_uint64()) return static_cast<double>(v->get_uint64());
    if (v->is_double() && std::isfinite(v->get_double())) return v->get_double();
    return std::nullopt;
}

std::chrono::system_clock::time_point from_seconds(double s) {
    // Clamp far values into the clock's range (int64 nanoseconds: about
    // ±292 years from 1970) instead of overflowing it, which is undefined
    // behaviour and made a year-2286 exp read as the far past (found by
    // test/fuzz/jwt.cpp). ±9e9 s (years 1685..2255) keeps room for the
    // leeway added to it.
    s = std::clamp(s, -9e9, 9e9);
    return std::chrono::system_clock::time_point{
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(s))};
}

}  // namespace

// Written out because strictness is the point: OpenSSL's and Beast's
// decoders accept padding, whitespace or non-zero trailing bits.
std::optional<std::string> base64url_decode(std::string_view in) {
    if (in.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(in.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : in) {
        auto v = decode_table[c];
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return std::nullopt;  // non-canonical: leftover bits must be zero
    return out;
}

std::string base64url_encode(std::string_view in) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((in.size() * 4 + 2) / 3);
    std::uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : in) {
        acc = (acc << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(alphabet[(acc >> bits) & 0x3f]);
        }
    }
    if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 0x3f]);
    return out;
}

std::string sign_hs256(std::string_view header_json, std::string_view claims_json, std::string_view secret) {
    auto input = base64url_encode(header_json) + "." + base64url_encode(claims_json);
    auto mac = hmac_sha256(input, secret);
    return input + "." + base64url_encode({reinterpret_cast<const char*>(mac.data()), mac.size()});
}

std::string sign_hs256(std::string_view claims_json, std::string_view secret) {
    return sign_hs256(R"({"alg":"HS256","typ":"JWT"})", claims_json, secret);
}

verifier::verifier(const conf::auth_config& config, const sync::time_source& clock)
    : config_(config), clock_(clock) {}

std::size_t verifier::cached_tokens() const {
    std::lock_guard lock(mutex_);
    return tokens_.size();
}

std::size_t verifier::cache_sweeps() const {
    std::lock_guard lock(mutex_);
    return sweeps_;
}

// Frees one place in the full token cache, in constant time amortized: the
// expired tokens are swept once per quarter of the capacity inserted, else
// a token of a bucket picked at random goes. (Sweeping on every insertion
// into a full cache cost a walk of all token_cache_entries per request once
// more users than that were active, under the one mutex: bench/memory.)
void verifier::make_room(std::chrono::system_clock::time_point now) const {
    if (++inserted_since_sweep_ > config_.token_cache_entries / 4) {
        inserted_since_sweep_ = 0;
        ++sweeps_;
        std::erase_if(tokens_, [&](const auto& kv) { return now >= kv.second->expires; });
        if (tokens_.size() < config_.token_cache_entries) return;
    }
    for (;;) {  // the cache is not empty: some bucket holds a token
        victim_seed_ = victim_seed_ * 6364136223846793005ULL + 1442695040888963407ULL;  // an LCG step
        const auto bucket = static_cast<std::size_t>(victim_seed_ >> 33) % tokens_.bucket_count();
        if (tokens_.bucket_size(bucket) == 0) continue;
        const std::string victim = tokens_.begin(bucket)->first;
        tokens_.erase(victim);
        return;
    }
}

boost::system::result<std::shared_ptr<const verified_user>> verifier::verify(
    std::string_view authorization) const {
    if (config_.jwt_secret.empty()) return make_error_code(error::disabled);
    if (authorization.empty()) return make_error_code(error::missing);
    // The scheme is case-insensitive (RFC 9110 §11.1).
    constexpr std::string_view scheme = "bearer ";
    if (authorization.size() <= scheme.size()) return make_error_code(error::not_bearer);
    for (std::size_t i = 0; i < scheme.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i])
            return make_error_code(error::not_bearer);
    auto token = authorization.substr(scheme.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);

    auto now = clock_.system_now();
    {
        std::lock_guard lock(mutex_);
        auto it = tokens_.find(token);
        if (it != tokens_.end()) {
            if (now < it->second->expires) return it->second;
            tokens_.erase(it);
            return make_error_code(error::expired);
        }
    }

    auto verified = verify_token(token);
    if (!verified || config_.token_cache_entries == 0) return verified;

    std::lock_guard lock(mutex_);
    if (tokens_.size() >= config_.token_cache_entries) make_room(now);
    tokens_.emplace(std::string(token), *verified);
    return verified;
}

boost::system::result<std::shared_ptr<const verified_user>> verifier::verify_token(
    std::string_view token) const {
    auto dot1 = token.find('.');
    if (dot1 == std::string_view::npos) return make_error_code(error::malformed);
    auto dot2 = token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
        return make_error_code(error::malformed);
    auto header_b64 = token.substr(0, dot1);
    auto claims_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
    auto sig_b64 = token.substr(dot2 + 1);
    if (header_b64.empty() || claims_b64.empty() || sig_b64.empty()) return make_error_code(error::malformed);

    auto header = base64url_decode(header_b64);
    auto claims = base64url_decode(claims_b64);
    auto sig = base64url_decode(sig_b64);
    if (!header || !claims || !sig) return make_error_code(error::bad_base64);

    boost::system::error_code ec;
    auto header_json = boost::json::parse(*header, ec);
    if (ec || !header_json.is_object()) return make_error_code(error::bad_json);
    auto* alg = header_json.as_object().if_contains("alg");
    if (!alg || !alg->is_string() || alg->get_string() != "HS256") return make_error_code(error::bad_alg);

    // The signature before anything in the claims is trusted; constant time.
    auto mac = hmac_sha256(token.substr(0, dot2), config_.jwt_secret);
    if (sig->size() != mac.size() || CRYPTO_memcmp(sig->data(), mac.data(), mac.size()) != 0)
        return make_error_code(error::bad_signature);

    auto claims_json = boost::json::parse(*claims, ec);
    if (ec || !claims_json.is_object()) return make_error_code(error::bad_json);
    const auto& obj = claims_json.as_object();

    auto now = clock_.system_now();
    auto exp = numeric_date(obj.if_contains("exp"));
    if (!exp) return make_error_code(error::no_exp);
    auto expires = from_seconds(*exp);
    // No leeway on exp: the legacy rejects a token at its exp, so a cached
    // answer for it a second later would be one the legacy refuses.
    if (now >= expires) return make_error_code(error::expired);
    if (auto* nbf_value = obj.if_contains("nbf")) {
        auto nbf = numeric_date(nbf_value);
        if (!nbf || now + config_.leeway < from_seconds(*nbf)) return make_error_code(error::not_yet_valid);
    }
    auto* sub = obj.if_contains("sub");
    if (!sub || !sub->is_string() || sub->get_string().empty()) return make_error_code(error::no_sub);
    // The cache key is route, user and query joined by '\n': a subject with a
    // control character could spell another user's key. No legacy subject
    // has one; such a token is not verified (the legacy answers it).
    for (unsigned char ch : sub->get_string())
        if (ch < 0x20 || ch == 0x7f) return make_error_code(error::no_sub);

    // A uuid subject in upper case names the same user (PostgreSQL's uuid
    // equality and the legacy's regex ignore case): keyed in lower case, so
    // that both tokens share entries and the invalidation tag user:<uuid>
    // (lower case, from PostgreSQL's uuid::text) reaches them.
    std::string user_id(sub->get_string());
    if (is_uuid_shaped(user_id))
        std::transform(user_id.begin(), user_id.end(), user_id.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return std::make_shared<const verified_user>(verified_user{std::move(user_id), expires});
}

}  // namespace sidecache::auth
