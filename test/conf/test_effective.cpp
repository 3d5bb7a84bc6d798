// conf::to_json (GET /config), its redaction, and the warnings that
// --check-config and the start print for a valid but risky configuration.

#include "conf/effective.hpp"
#include "conf/loader.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>

using namespace sidecache::conf;

namespace {

env_lookup env_of(std::map<std::string, std::string, std::less<>> vars) {
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

}  // namespace

TEST_CASE("a database URL or conninfo loses its password and keeps the rest", "[unit]") {
    const auto [url, shown] = GENERATE(table<std::string, std::string>({
        {"", ""},
        {"postgresql://app@db:5432/app", "postgresql://app@db:5432/app"},
        {"postgresql://app:s3cret@db:5432/app", "postgresql://app:[redacted]@db:5432/app"},
        {"postgres://app:p%40ss@db/app?sslmode=require", "postgres://app:[redacted]@db/app?sslmode=require"},
        {"postgresql://db/app?user=app&password=s3cret&sslmode=require",
         "postgresql://db/app?user=app&password=[redacted]&sslmode=require"},
        {"host=db user=app password=s3cret dbname=app", "host=db user=app password=[redacted] dbname=app"},
        {"host=db password = 's3 cr\\'et' dbname=app", "host=db password = [redacted] dbname=app"},
        {"host=db PASSWORD=s3cret", "host=db PASSWORD=[redacted]"},
    }));
    CAPTURE(url);
    CHECK(redact_url(url) == shown);
}

TEST_CASE("the effective configuration as JSON: every section, secrets redacted", "[unit]") {
    const std::string yaml =
        "server:\n  listen: 0.0.0.0:8081\n  drain_timeout: 15s\n"
        "admin:\n  token: ${ADMIN_TOKEN}\n"
        "upstream:\n  url: http://legacy:3000\n  health_check_interval: 2s\n"
        "auth:\n  jwt_secret: ${JWT_SECRET}\n"
        "database:\n  url: ${DATABASE_URL}\n"
        "external:\n  url: https://api.elevenlabs.io\n  api_key: ${ELEVENLABS_API_KEY}\n"
        "l2:\n  url: redis://app:redis-pw-42@redis:6380/2\n"
        "cache:\n  max_bytes: 64MiB\n  routes:\n"
        "    - name: overview\n      path: /api/dashboard/overview\n      ttl: 45s\n";
    auto cfg = load_string(yaml, "t.yaml",
                           env_of({{"ADMIN_TOKEN", "tok-123456"},
                                   {"JWT_SECRET", "jwt-abcdef"},
                                   {"DATABASE_URL", "host=pg user=app password=pw-7890"},
                                   {"ELEVENLABS_API_KEY", "xi-key-5555"}}));
    const auto text = boost::json::serialize(to_json(cfg));
    for (auto s : {"tok-123456", "jwt-abcdef", "pw-7890", "xi-key-5555", "redis-pw-42"}) {
        CAPTURE(s);
        CHECK(text.find(s) == std::string::npos);
    }
    auto j = to_json(cfg);
    CHECK(j.at("source_file") == "t.yaml");
    CHECK(j.at("server").at("listen") == "0.0.0.0:8081");
    CHECK(j.at("server").at("drain_timeout") == "15s");
    CHECK(j.at("admin").at("token") == "[redacted]");
    CHECK(j.at("admin").at("listen") == "127.0.0.1:9901");
    CHECK(j.at("upstream").at("url") == "http://legacy:3000");
    CHECK(j.at("upstream").at("health_check_interval") == "2s");
    CHECK(j.at("auth").at("jwt_secret") == "[redacted]");
    CHECK(j.at("database").at("url") == "host=pg user=app password=[redacted]");
    CHECK(j.at("external").at("api_key") == "[redacted]");
    CHECK(j.at("external").at("breaker").at("cool_down") == "500ms");
    CHECK(j.at("cache").at("max_bytes") == "64MiB");
    CHECK(j.at("cache").at("routes").at(0).at("ttl") == "45s");
    CHECK(j.at("l2").at("url") == "redis://app:[redacted]@redis:6380/2");
    CHECK(j.at("l2").at("op_timeout") == "20ms");
    CHECK(j.at("l2").at("max_value_bytes") == "1MiB");
    CHECK(j.at("log").at("level") == "info");

    // Unset secrets read empty: an operator sees that none is configured.
    auto bare = to_json(load_string("upstream:\n  url: http://legacy:3000\n", "b.yaml", env_of({})));
    CHECK(bare.at("auth").at("jwt_secret") == "");
    CHECK(bare.at("admin").at("token") == "");
    CHECK(bare.at("l2").at("url") == "");
}

TEST_CASE("an admin listener reachable from other hosts without admin.token is warned about", "[unit]") {
    const auto [listen, token, warned] = GENERATE(table<std::string, std::string, bool>({
        {"127.0.0.1:9901", "", false},
        {"127.0.0.2:9901", "", false},
        {"[::1]:9901", "", false},
        {"localhost:9901", "", false},
        {"0.0.0.0:9901", "", true},
        {"[::]:9901", "", true},
        {"10.0.0.5:9901", "", true},
        {"0.0.0.0:9901", "t0ken", false},
    }));
    CAPTURE(listen, token);
    auto cfg = load_string("admin:\n  listen: \"" + listen + "\"\n  token: \"" + token +
                               "\"\nupstream:\n  url: http://legacy:3000\n",
                           "w.yaml", env_of({}));
    auto w = warnings(cfg);
    REQUIRE(w.size() == (warned ? 1u : 0u));
    if (warned) {
        CHECK_THAT(w[0], Catch::StartsWith("w.yaml: admin.listen "));
        CHECK_THAT(w[0], Catch::Contains("admin.token is empty"));
    }
    // Off: nothing listens, nothing to warn about.
    cfg.admin.enabled = false;
    CHECK(warnings(cfg).empty());
}
