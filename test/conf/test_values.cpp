// The pure value parsers of conf/values.hpp: what each accepts, what it
// rejects and the exact message.

#include "conf/values.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace sidecache::conf;
using namespace std::chrono_literals;

TEST_CASE("parse_duration accepts 0 and <n><unit> terms", "[unit]") {
    auto [text, ms] = GENERATE(table<std::string, long long>({
        {"0", 0},
        {"0s", 0},
        {"250ms", 250},
        {"30s", 30'000},
        {"10m", 600'000},
        {"1h", 3'600'000},
        {"1m30s", 90'000},
        {"1h0m1ms", 3'600'001},
        {"168h", 604'800'000},
    }));
    CAPTURE(text);
    auto d = parse_duration(text);
    REQUIRE(d.has_value());
    CHECK(d->count() == ms);
}

TEST_CASE("parse_duration rejects what is not a duration", "[unit]") {
    auto text =
        GENERATE(as<std::string>{}, "", "5", "1.5s", "s", "-1s", "10 s", "1d", "1hour", "ms", "30S", "1h30");
    CAPTURE(text);
    auto d = parse_duration(text);
    REQUIRE(d.has_error());
    CHECK(d.error().message == "\"" + text + "\" is not a duration (write 250ms, 30s, 10m, 1h or 0)");
}

TEST_CASE("parse_duration rejects a duration that overflows", "[unit]") {
    auto text = GENERATE(as<std::string>{}, "99999999999999999999s", "9999999999999999h");
    auto d = parse_duration(text);
    REQUIRE(d.has_error());
    CHECK(d.error().message == "\"" + text + "\" is too long a duration");
}

TEST_CASE("parse_size accepts bytes, binary and decimal units", "[unit]") {
    auto [text, bytes] = GENERATE(table<std::string, std::size_t>({
        {"0", 0},
        {"512", 512},
        {"10B", 10},
        {"16KiB", 16 * 1024},
        {"256MiB", 256ull * 1024 * 1024},
        {"1GiB", 1ull << 30},
        {"16KB", 16'000},
        {"1MB", 1'000'000},
        {"2GB", 2'000'000'000},
    }));
    CAPTURE(text);
    auto n = parse_size(text);
    REQUIRE(n.has_value());
    CHECK(*n == bytes);
}

TEST_CASE("parse_size rejects what is not a size", "[unit]") {
    auto text =
        GENERATE(as<std::string>{}, "", "16kib", "1.5MiB", "-1", "MiB", "16 KiB", "16KiBs", "1TiB", "0x10");
    CAPTURE(text);
    auto n = parse_size(text);
    REQUIRE(n.has_error());
    CHECK(n.error().message ==
          "\"" + text + "\" is not a size (write 512, 16KiB, 256MiB, 1GiB; KB, MB, GB are powers of 1000)");
}

TEST_CASE("parse_size rejects a size that overflows", "[unit]") {
    auto n = parse_size("99999999999GiB");
    REQUIRE(n.has_error());
    CHECK(n.error().message == "\"99999999999GiB\" is too large a size");
}

TEST_CASE("parse_endpoint splits host and port", "[unit]") {
    auto [text, host, port] = GENERATE(table<std::string, std::string, int>({
        {"127.0.0.1:8080", "127.0.0.1", 8080},
        {"localhost:0", "localhost", 0},
        {"0.0.0.0:65535", "0.0.0.0", 65535},
        {"[::1]:9901", "::1", 9901},
    }));
    CAPTURE(text);
    auto e = parse_endpoint(text);
    REQUIRE(e.has_value());
    CHECK(e->host == host);
    CHECK(e->port == port);
}

TEST_CASE("parse_endpoint rejects what is not host:port", "[unit]") {
    auto [text, message] = GENERATE(table<std::string, std::string>({
        {"127.0.0.1", "\"127.0.0.1\" is not an endpoint (write host:port, e.g. 127.0.0.1:8080)"},
        {"::1:80", "\"::1:80\" is not an endpoint (write host:port, e.g. 127.0.0.1:8080)"},
        {"[::1]80", "\"[::1]80\" is not an endpoint (write host:port, e.g. 127.0.0.1:8080)"},
        {"host:", "\"host:\" is not an endpoint (write host:port, e.g. 127.0.0.1:8080)"},
        {":8080", "\":8080\" has no host (write 0.0.0.0:PORT for every interface)"},
        {"host:65536", "\"host:65536\": the port must be a number from 0 to 65535"},
        {"host:http", "\"host:http\": the port must be a number from 0 to 65535"},
    }));
    CAPTURE(text);
    auto e = parse_endpoint(text);
    REQUIRE(e.has_error());
    CHECK(e.error().message == message);
}

TEST_CASE("parse_base_url splits an http(s) URL, with default ports", "[unit]") {
    auto [text, scheme, host, port, path] =
        GENERATE(table<std::string, std::string, std::string, int, std::string>({
            {"http://127.0.0.1:3000", "http", "127.0.0.1", 3000, ""},
            {"https://api.elevenlabs.io", "https", "api.elevenlabs.io", 443, ""},
            {"http://legacy/", "http", "legacy", 80, ""},
            {"http://legacy:8000/base/", "http", "legacy", 8000, "/base"},
            {"http://[::1]:3000", "http", "::1", 3000, ""},
        }));
    CAPTURE(text);
    auto u = parse_base_url(text);
    REQUIRE(u.has_value());
    CHECK(u->scheme == scheme);
    CHECK(u->host == host);
    CHECK(u->port == port);
    CHECK(u->path == path);
    CHECK(u->text == text);
}

TEST_CASE("parse_base_url rejects what is not an http(s) base URL", "[unit]") {
    auto [text, why] = GENERATE(table<std::string, std::string>({
        {"", "not an absolute URL"},
        {"127.0.0.1:3000", "not an absolute URL"},
        {"http://x#frag", "not an absolute URL"},
        {"localhost:3000", "the scheme must be http or https"},
        {"ftp://files", "the scheme must be http or https"},
        {"http://", "no host"},
        {"http:/path", "no host"},
        {"http://user:pw@legacy", "user info is not allowed"},
        {"http://legacy?x=1", "a query is not allowed"},
        {"http://legacy:0", "the port must be a number from 1 to 65535"},
        {"http://legacy:70000", "the port must be a number from 1 to 65535"},
    }));
    CAPTURE(text);
    auto u = parse_base_url(text);
    REQUIRE(u.has_error());
    CHECK(u.error().message == "\"" + text + "\" is not an http(s) base URL: " + why);
}

TEST_CASE("parse_bool", "[unit]") {
    auto [text, value] = GENERATE(table<std::string, bool>({{"true", true},
                                                            {"True", true},
                                                            {"TRUE", true},
                                                            {"false", false},
                                                            {"False", false},
                                                            {"FALSE", false}}));
    CHECK(parse_bool(text).value() == value);

    auto bad = GENERATE(as<std::string>{}, "yes", "1", "", "tRUE");
    auto r = parse_bool(bad);
    REQUIRE(r.has_error());
    CHECK(r.error().message == "\"" + bad + "\" is not a boolean (write true or false)");
}

TEST_CASE("parse_unsigned checks digits and range", "[unit]") {
    CHECK(parse_unsigned("0", 0, 10).value() == 0);
    CHECK(parse_unsigned("10", 0, 10).value() == 10);
    CHECK(parse_unsigned("18446744073709551615", 0, UINT64_MAX).value() == UINT64_MAX);

    auto [text, message] = GENERATE(table<std::string, std::string>({
        {"11", "11 is out of range: must be from 1 to 10"},
        {"0", "0 is out of range: must be from 1 to 10"},
        {"99999999999999999999", "99999999999999999999 is out of range: must be from 1 to 10"},
        {"-1", "\"-1\" is not a whole number"},
        {"+1", "\"+1\" is not a whole number"},
        {"1.0", "\"1.0\" is not a whole number"},
        {"ten", "\"ten\" is not a whole number"},
        {"", "\"\" is not a whole number"},
    }));
    CAPTURE(text);
    auto r = parse_unsigned(text, 1, 10);
    REQUIRE(r.has_error());
    CHECK(r.error().message == message);
}

TEST_CASE("parse_number checks the text and range", "[unit]") {
    CHECK(parse_number("0.5", 0, 1).value() == 0.5);
    CHECK(parse_number("2", 1, 100).value() == 2.0);
    CHECK(parse_number("1.5", 0, 1).error().message == "1.5 is out of range: must be from 0 to 1");
    CHECK(parse_number("nan", 0, 1).error().message == "nan is out of range: must be from 0 to 1");
    CHECK(parse_number("half", 0, 1).error().message == "\"half\" is not a number");
    CHECK(parse_number("0.5x", 0, 1).error().message == "\"0.5x\" is not a number");
}

namespace {

env_lookup fake_env(std::map<std::string, std::string, std::less<>> vars) {
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

}  // namespace

TEST_CASE("expand_env replaces ${NAME} and ${NAME:-default}", "[unit]") {
    auto env = fake_env({{"A", "alpha"}, {"EMPTY", ""}, {"DOLLAR", "p$w"}});
    auto [text, expanded] = GENERATE(table<std::string, std::string>({
        {"plain", "plain"},
        {"${A}", "alpha"},
        {"x${A}y${A}", "xalphayalpha"},
        {"${A:-def}", "alpha"},
        {"${B:-def}", "def"},
        {"${EMPTY:-def}", "def"},
        {"${EMPTY}", ""},
        {"${B:-}", ""},
        {"${B:-http://h:1}", "http://h:1"},
        {"${DOLLAR}", "p$w"},  // a value is not expanded again
        {"$$", "$"},
        {"$${A}", "${A}"},
        {"p$$w", "p$w"},
        {"a$b", "a$b"},
        {"$", "$"},
        {"cost: 5$", "cost: 5$"},
    }));
    CAPTURE(text);
    auto r = expand_env(text, env);
    REQUIRE(r.has_value());
    CHECK(*r == expanded);
}

TEST_CASE("expand_env errors", "[unit]") {
    auto env = fake_env({{"A", "alpha"}});
    auto [text, message] = GENERATE(table<std::string, std::string>({
        {"${B}", "environment variable B is not set (write ${B:-default} for a default)"},
        {"x${A}${B}", "environment variable B is not set (write ${B:-default} for a default)"},
        {"${A", "unterminated \"${\" in \"${A\" (write $$ for a literal $)"},
        {"${}", "\"${}\" is not a variable reference (write ${NAME} or ${NAME:-default})"},
        {"${1A}", "\"${1A}\" is not a variable reference (write ${NAME} or ${NAME:-default})"},
        {"${A B}", "\"${A B}\" is not a variable reference (write ${NAME} or ${NAME:-default})"},
        {"${:-x}", "\"${:-x}\" is not a variable reference (write ${NAME} or ${NAME:-default})"},
    }));
    CAPTURE(text);
    auto r = expand_env(text, env);
    REQUIRE(r.has_error());
    CHECK(r.error().message == message);
}

TEST_CASE("format_duration and format_size give the shortest exact spelling", "[unit]") {
    CHECK(format_duration(0ms) == "0");
    CHECK(format_duration(250ms) == "250ms");
    CHECK(format_duration(1500ms) == "1500ms");
    CHECK(format_duration(30s) == "30s");
    CHECK(format_duration(90s) == "1m30s");
    CHECK(format_duration(168h) == "168h");
    CHECK(format_size(0) == "0");
    CHECK(format_size(1000) == "1000");
    CHECK(format_size(16 * 1024) == "16KiB");
    CHECK(format_size(1536) == "1536");
    CHECK(format_size(1ull << 30) == "1GiB");

    // What format_* writes, parse_* reads back.
    auto ms = GENERATE(0, 1, 999, 1000, 61'000, 3'600'000, 3'661'001);
    CHECK(parse_duration(format_duration(duration{ms})).value() == duration{ms});
}
