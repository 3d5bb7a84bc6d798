#pragma once
// Pure parsers for the value types of the configuration file: no YAML, no I/O.
// Each returns the value or a parse_error whose message says what is wrong
// with the text (conf/loader.cpp adds the file, line and key path).

#include "conf/config.hpp"
#include "conf/env.hpp"

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace sidecache::conf {

struct parse_error {
    std::string message;
};

// Lets result<T, parse_error>::value() throw std::invalid_argument(message).
[[noreturn]] void throw_exception_from_error(const parse_error& e, const boost::source_location& loc);

template <class T>
using parsed = boost::system::result<T, parse_error>;

// "0", or one or more <digits><unit> with unit ms, s, m, h: "250ms", "30s",
// "10m", "1h", "1m30s".
parsed<duration> parse_duration(std::string_view text);

// "512" (bytes), or <digits><unit>: B, KiB/MiB/GiB (1024-based), KB/MB/GB
// (1000-based).
parsed<std::size_t> parse_size(std::string_view text);

// "host:port" or "[v6-address]:port"; port 0..65535 (0: the kernel chooses).
parsed<endpoint> parse_endpoint(std::string_view text);

// An absolute http:// or https:// URL without user info, query or fragment;
// the port defaults to 80/443, the path loses its trailing '/'.
parsed<base_url> parse_base_url(std::string_view text);

// redis://[user:password@]host[:port][/db]: the port defaults to 6379, db
// to 0 (0..15 as Redis's default `databases`); no query or fragment.
parsed<redis_url> parse_redis_url(std::string_view text);
// "true" or "false" (also True/TRUE/False/FALSE, as YAML 1.2 core).
parsed<bool> parse_bool(std::string_view text);

// A whole number in [min, max].
parsed<std::uint64_t> parse_unsigned(std::string_view text, std::uint64_t min, std::uint64_t max);

// A decimal number in [min, max].
parsed<double> parse_number(std::string_view text, double min, double max);

// Expands ${NAME} and ${NAME:-default} (default when NAME is unset or empty)
// from env; "$$" is a literal '$', any other '$' is kept as is. An unset NAME
// without a default is an error.
parsed<std::string> expand_env(std::string_view text, const env_lookup& env);

// "250ms", "30s", "5m", "1h", "1m30s", "0": the shortest exact spelling.
std::string format_duration(duration d);

// "512", "16KiB", "256MiB", "1GiB", "1500": the shortest exact spelling.
std::string format_size(std::size_t bytes);

}  // namespace sidecache::conf
