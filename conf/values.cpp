#include "conf/values.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <fmt/format.h>

#include <array>
#include <charconv>
#include <limits>
#include <span>
#include <stdexcept>

namespace sidecache::conf {

void throw_exception_from_error(const parse_error& e, const boost::source_location&) {
    throw std::invalid_argument(e.message);
}

namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Reads the leading digits of text into out; returns how many characters were
// read, 0 if none or if the number does not fit.
std::size_t leading_number(std::string_view text, std::uint64_t& out) {
    std::size_t n = 0;
    while (n < text.size() && is_digit(text[n])) ++n;
    if (n == 0) return 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + n, out);
    if (ec != std::errc{} || ptr != text.data() + n) return 0;
    return n;
}

struct unit {
    std::string_view name;
    std::uint64_t factor;
};

// Longest names first so "ms" is not read as "m" followed by "s".
constexpr std::array duration_units{
    unit{"ms", 1},
    unit{"s", 1'000},
    unit{"m", 60'000},
    unit{"h", 3'600'000},
};

constexpr std::array size_units{
    unit{"KiB", 1ull << 10},
    unit{"MiB", 1ull << 20},
    unit{"GiB", 1ull << 30},
    unit{"KB", 1'000},
    unit{"MB", 1'000'000},
    unit{"GB", 1'000'000'000},
    unit{"B", 1},
};

// The unit text starts with, among units (the longest match).
const unit* match_unit(std::string_view text, std::span<const unit> units) {
    const unit* best = nullptr;
    for (const auto& u : units) {
        if (text.starts_with(u.name) && (best == nullptr || u.name.size() > best->name.size())) best = &u;
    }
    return best;
}

bool multiply_add(std::uint64_t& total, std::uint64_t n, std::uint64_t factor) {
    std::uint64_t product = 0;
    if (__builtin_mul_overflow(n, factor, &product)) return false;
    return !__builtin_add_overflow(total, product, &total);
}

parse_error bad_duration(std::string_view text) {
    return {fmt::format("\"{}\" is not a duration (write 250ms, 30s, 10m, 1h or 0)", text)};
}

parse_error bad_size(std::string_view text) {
    return {fmt::format(
        "\"{}\" is not a size (write 512, 16KiB, 256MiB, 1GiB; KB, MB, GB are powers of 1000)", text)};
}

}  // namespace

parsed<duration> parse_duration(std::string_view text) {
    if (text == "0") return duration{0};
    if (text.empty()) return bad_duration(text);
    std::uint64_t total = 0;
    std::string_view rest = text;
    while (!rest.empty()) {
        std::uint64_t n = 0;
        std::size_t digits = leading_number(rest, n);
        if (digits == 0) {
            if (!rest.empty() && is_digit(rest[0]))
                return parse_error{fmt::format("\"{}\" is too long a duration", text)};
            return bad_duration(text);
        }
        rest.remove_prefix(digits);
        const unit* u = match_unit(rest, duration_units);
        if (u == nullptr) return bad_duration(text);
        rest.remove_prefix(u->name.size());
        if (!multiply_add(total, n, u->factor))
            return parse_error{fmt::format("\"{}\" is too long a duration", text)};
    }
    // duration is milliseconds in a signed 64-bit count.
    if (total > static_cast<std::uint64_t>(std::numeric_limits<duration::rep>::max()))
        return parse_error{fmt::format("\"{}\" is too long a duration", text)};
    return duration{static_cast<duration::rep>(total)};
}

parsed<std::size_t> parse_size(std::string_view text) {
    std::uint64_t n = 0;
    std::size_t digits = leading_number(text, n);
    if (digits == 0) {
        if (!text.empty() && is_digit(text[0]))
            return parse_error{fmt::format("\"{}\" is too large a size", text)};
        return bad_size(text);
    }
    std::string_view rest = text.substr(digits);
    std::uint64_t factor = 1;
    if (!rest.empty()) {
        const unit* u = match_unit(rest, size_units);
        if (u == nullptr || u->name.size() != rest.size()) return bad_size(text);
        factor = u->factor;
    }
    std::uint64_t total = 0;
    if (!multiply_add(total, n, factor) || total > std::numeric_limits<std::size_t>::max())
        return parse_error{fmt::format("\"{}\" is too large a size", text)};
    return static_cast<std::size_t>(total);
}

parsed<endpoint> parse_endpoint(std::string_view text) {
    auto bad = [&] {
        return parse_error{
            fmt::format("\"{}\" is not an endpoint (write host:port, e.g. 127.0.0.1:8080)", text)};
    };
    std::string_view host;
    std::string_view port;
    if (text.starts_with('[')) {
        // [v6-address]:port
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return bad();
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return bad();
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        // An unbracketed IPv6 address is ambiguous.
        if (host.find(':') != std::string_view::npos) return bad();
    }
    if (host.empty())
        return parse_error{fmt::format("\"{}\" has no host (write 0.0.0.0:PORT for every interface)", text)};
    for (char c : host) {
        if (c == ' ' || c == '/' || c == '[' || c == ']') return bad();
    }
    if (port.empty()) return bad();
    auto number = parse_unsigned(port, 0, 65535);
    if (!number) return parse_error{fmt::format("\"{}\": the port must be a number from 0 to 65535", text)};
    return endpoint{std::string(host), static_cast<std::uint16_t>(*number)};
}

parsed<base_url> parse_base_url(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return parse_error{fmt::format("\"{}\" is not an http(s) base URL: {}", text, why)};
    };
    auto parsed_uri = boost::urls::parse_absolute_uri(text);
    if (!parsed_uri) return bad("not an absolute URL");
    const boost::urls::url_view& u = *parsed_uri;
    base_url out;
    out.text = std::string(text);
    if (u.scheme_id() == boost::urls::scheme::http) {
        out.scheme = "http";
        out.port = 80;
    } else if (u.scheme_id() == boost::urls::scheme::https) {
        out.scheme = "https";
        out.port = 443;
    } else {
        return bad("the scheme must be http or https");
    }
    if (!u.has_authority() || u.encoded_host().empty()) return bad("no host");
    if (u.has_userinfo()) return bad("user info is not allowed");
    if (u.has_query()) return bad("a query is not allowed");
    if (u.has_port()) {
        auto port = parse_unsigned(u.port(), 1, 65535);
        if (!port) return bad("the port must be a number from 1 to 65535");
        out.port = static_cast<std::uint16_t>(*port);
    }
    // encoded_host_name keeps an IPv6 literal's brackets out.
    if (u.host_type() == boost::urls::host_type::ipv6)
        out.host = u.host_ipv6_address().to_string();
    else
        out.host = std::string(u.encoded_host());
    out.path = std::string(u.encoded_path());
    while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
    return out;
}

parsed<redis_url> parse_redis_url(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return parse_error{fmt::format("\"{}\" is not a redis:// URL: {}", text, why)};
    };
    auto parsed_uri = boost::urls::parse_absolute_uri(text);
    if (!parsed_uri) return bad("not an absolute URL");
    const boost::urls::url_view& u = *parsed_uri;
    if (u.scheme() != "redis") return bad("the scheme must be redis");
    if (!u.has_authority() || u.encoded_host().empty()) return bad("no host");
    if (u.has_query() || u.has_fragment()) return bad("a query or fragment is not allowed");
    redis_url out;
    out.text = std::string(text);
    if (u.has_userinfo()) {
        out.user = u.user();
        out.password = u.password();
    }
    if (u.has_port()) {
        auto port = parse_unsigned(u.port(), 1, 65535);
        if (!port) return bad("the port must be a number from 1 to 65535");
        out.port = static_cast<std::uint16_t>(*port);
    }
    if (u.host_type() == boost::urls::host_type::ipv6)
        out.host = u.host_ipv6_address().to_string();
    else
        out.host = std::string(u.encoded_host());
    std::string_view path = u.encoded_path();
    if (!path.empty() && path != "/") {
        auto db = parse_unsigned(path.substr(1), 0, 15);
        if (!db) return bad("the path must be a database number from 0 to 15");
        out.db = static_cast<unsigned>(*db);
    }
    return out;
}

parsed<bool> parse_bool(std::string_view text) {
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
    return parse_error{fmt::format("\"{}\" is not a boolean (write true or false)", text)};
}

parsed<std::uint64_t> parse_unsigned(std::string_view text, std::uint64_t min, std::uint64_t max) {
    std::uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    bool all_digits = !text.empty() && ptr == text.data() + text.size();
    if (ec == std::errc::result_out_of_range && all_digits)
        return parse_error{fmt::format("{} is out of range: must be from {} to {}", text, min, max)};
    if (ec != std::errc{} || !all_digits || text[0] == '+' || text[0] == '-')
        return parse_error{fmt::format("\"{}\" is not a whole number", text)};
    if (n < min || n > max)
        return parse_error{fmt::format("{} is out of range: must be from {} to {}", text, min, max)};
    return n;
}

parsed<double> parse_number(std::string_view text, double min, double max) {
    double x = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
    if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size())
        return parse_error{fmt::format("\"{}\" is not a number", text)};
    if (!(x >= min && x <= max))
        return parse_error{fmt::format("{} is out of range: must be from {} to {}", text, min, max)};
    return x;
}

parsed<std::string> expand_env(std::string_view text, const env_lookup& env) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        char c = text[i];
        if (c != '$' || i + 1 >= text.size()) {
            out += c;
            ++i;
            continue;
        }
        if (text[i + 1] == '$') {
            out += '$';
            i += 2;
            continue;
        }
        if (text[i + 1] != '{') {
            out += c;
            ++i;
            continue;
        }
        auto close = text.find('}', i + 2);
        if (close == std::string_view::npos)
            return parse_error{
                fmt::format("unterminated \"${{\" in \"{}\" (write $$ for a literal $)", text)};
        std::string_view inside = text.substr(i + 2, close - i - 2);
        std::string_view name = inside;
        std::optional<std::string_view> fallback;
        if (auto sep = inside.find(":-"); sep != std::string_view::npos) {
            name = inside.substr(0, sep);
            fallback = inside.substr(sep + 2);
        }
        bool valid = !name.empty() && !is_digit(name[0]);
        for (char n : name) {
            valid = valid && (is_digit(n) || n == '_' || (n >= 'A' && n <= 'Z') || (n >= 'a' && n <= 'z'));
        }
        if (!valid)
            return parse_error{fmt::format(
                "\"${{{}}}\" is not a variable reference (write ${{NAME}} or ${{NAME:-default}})", inside)};
        std::optional<std::string> value = env(name);
        if (fallback && (!value || value->empty())) {
            out += *fallback;
        } else if (value) {
            out += *value;
        } else {
            return parse_error{fmt::format(
                "environment variable {} is not set (write ${{{}:-default}} for a default)", name, name)};
        }
        i = close + 1;
    }
    return parsed<std::string>(boost::system::in_place_value, std::move(out));
}

std::string format_duration(duration d) {
    auto ms = d.count();
    if (ms == 0) return "0";
    std::string out;
    if (ms % 1000 != 0 || ms < 0) return fmt::format("{}ms", ms);
    auto s = ms / 1000;
    if (s >= 3600) {
        out += fmt::format("{}h", s / 3600);
        s %= 3600;
    }
    if (s >= 60) {
        out += fmt::format("{}m", s / 60);
        s %= 60;
    }
    if (s > 0) out += fmt::format("{}s", s);
    return out;
}

std::string format_size(std::size_t bytes) {
    constexpr std::array<unit, 3> binary{unit{"GiB", 1ull << 30}, unit{"MiB", 1ull << 20},
                                         unit{"KiB", 1ull << 10}};
    for (const auto& u : binary) {
        if (bytes != 0 && bytes % u.factor == 0) return fmt::format("{}{}", bytes / u.factor, u.name);
    }
    return fmt::format("{}", bytes);
}

}  // namespace sidecache::conf
