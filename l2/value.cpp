#include "l2/value.hpp"

#include <boost/throw_exception.hpp>

#include <cstring>
#include <stdexcept>

namespace sidecache::l2 {

namespace {

// "SCL2" and a version byte: a value of another format (or another program
// sharing the prefix) is refused before any length is trusted.
constexpr std::string_view magic{"SCL2\x01", 5};

void put_u64(std::string& out, std::uint64_t n) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
}

void put_bytes(std::string& out, std::string_view s) {
    put_u64(out, s.size());
    out.append(s);
}

// Reads the fields back in order; any read past the end marks it truncated.
struct reader {
    std::string_view rest;
    bool short_read = false;

    std::uint64_t u64() {
        if (rest.size() < 8) return fail(), 0;
        std::uint64_t n = 0;
        for (int i = 0; i < 8; ++i) n |= std::uint64_t{static_cast<unsigned char>(rest[i])} << (8 * i);
        rest.remove_prefix(8);
        return n;
    }
    std::string bytes() {
        auto n = u64();
        if (short_read || rest.size() < n) return fail(), std::string();
        std::string out(rest.substr(0, n));
        rest.remove_prefix(n);
        return out;
    }
    void fail() {
        short_read = true;
        rest = {};
    }
};

}  // namespace

void throw_exception_from_error(decode_error e, const boost::source_location& loc) {
    boost::throw_exception(
        std::invalid_argument("l2 value: decode_error " + std::to_string(static_cast<int>(e))), loc);
}

std::string encode(const stored_value& v) {
    std::string out;
    std::size_t size = magic.size() + v.key.size() + v.body.size() + 128;
    for (const auto& [name, value] : v.headers) size += name.size() + value.size() + 16;
    out.reserve(size);
    out.append(magic);
    put_bytes(out, v.key);
    put_bytes(out, v.user_generation);
    put_bytes(out, v.global_generation);
    put_u64(out, static_cast<std::uint64_t>(v.computed_at_ms));
    put_u64(out, static_cast<std::uint64_t>(v.expires_at_ms));
    put_u64(out, v.status);
    put_u64(out, v.headers.size());
    for (const auto& [name, value] : v.headers) {
        put_bytes(out, name);
        put_bytes(out, value);
    }
    put_u64(out, v.tags.size());
    for (const auto& tag : v.tags) put_bytes(out, tag);
    put_bytes(out, v.body);
    return out;
}

boost::system::result<stored_value, decode_error> decode(std::string_view bytes,
                                                         std::string_view expected_key) {
    if (!bytes.starts_with(magic)) return decode_error::garbled;
    reader in{bytes.substr(magic.size())};
    stored_value v;
    v.key = in.bytes();
    if (in.short_read) return decode_error::truncated;
    if (v.key != expected_key) return decode_error::other_key;
    v.user_generation = in.bytes();
    v.global_generation = in.bytes();
    v.computed_at_ms = static_cast<std::int64_t>(in.u64());
    v.expires_at_ms = static_cast<std::int64_t>(in.u64());
    auto status = in.u64();
    if (status < 100 || status > 999) return in.short_read ? decode_error::truncated : decode_error::garbled;
    v.status = static_cast<unsigned>(status);
    // Each header takes at least 16 bytes: a count past that is garbage,
    // not a reason to reserve memory.
    auto headers = in.u64();
    if (headers > in.rest.size() / 16) return in.short_read ? decode_error::truncated : decode_error::garbled;
    for (std::uint64_t i = 0; i < headers && !in.short_read; ++i) {
        auto name = in.bytes();
        v.headers.emplace_back(std::move(name), in.bytes());
    }
    auto tags = in.u64();
    if (tags > in.rest.size() / 8) return in.short_read ? decode_error::truncated : decode_error::garbled;
    for (std::uint64_t i = 0; i < tags && !in.short_read; ++i) v.tags.push_back(in.bytes());
    v.body = in.bytes();
    if (in.short_read) return decode_error::truncated;
    if (!in.rest.empty()) return decode_error::garbled;
    return v;
}

}  // namespace sidecache::l2
