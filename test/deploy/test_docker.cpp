// The image's scripts: deploy/docker/entrypoint keeps the admin listener on
// loopback unless a token is set; deploy/docker/sidecache-probe (the
// HEALTHCHECK and the Kubernetes readiness probe) sends the token and exits
// 0 only on a 200.

#include "deploy/shell.hpp"
#include "proxy/application.hpp"
#include "proxy/server.hpp"
#include "support/test_config.hpp"
#include "support/test_upstream.hpp"

#include <catch2/catch.hpp>
#include <fmt/core.h>

#include <string>

using namespace sidecache;
using namespace sidecache::test;

namespace {

const std::string scripts = std::string(SIDECACHE_SOURCE_DIR) + "/deploy/docker/";

// SIDECACHE_ADMIN_LISTEN as the entrypoint hands it to sidecache (here: env).
std::string admin_listen_given(const std::string& environment) {
    auto r = shell("env -u SIDECACHE_ADMIN_LISTEN -u SIDECACHE_ADMIN_TOKEN " + environment +
                   " SIDECACHE_BINARY=/usr/bin/env " + scripts + "entrypoint");
    REQUIRE(r.code == 0);
    const std::string key = "\nSIDECACHE_ADMIN_LISTEN=";
    const auto at = ("\n" + r.output).find(key);
    if (at == std::string::npos) return "(unset)";
    const auto value = ("\n" + r.output).substr(at + key.size());
    return value.substr(0, value.find('\n'));
}

}  // namespace

TEST_CASE("the image's entrypoint opens the admin listener to other hosts only with a token", "[unit]") {
    CHECK(admin_listen_given("") == "127.0.0.1:9901");
    CHECK(admin_listen_given("SIDECACHE_ADMIN_TOKEN=") == "127.0.0.1:9901");
    CHECK(admin_listen_given("SIDECACHE_ADMIN_TOKEN=t0ken") == "0.0.0.0:9901");
    CHECK(admin_listen_given("SIDECACHE_ADMIN_LISTEN=10.1.2.3:9000") == "10.1.2.3:9000");
    // Its arguments reach sidecache as they are.
    auto r = shell("SIDECACHE_BINARY=/bin/echo " + scripts + "entrypoint --config '/etc/a b.yaml'");
    CHECK(r.output == "--config /etc/a b.yaml\n");
}

TEST_CASE("sidecache-probe exits 0 on a 200 of the admin listener, sending the token", "[integration]") {
    test_upstream up([](const recorded_request&) { return scripted_response{}; });
    auto cfg = test_config(up.port());
    cfg.admin.token = "probe-t0ken";
    proxy::application app(cfg);
    app.start();
    const auto listen = fmt::format("SIDECACHE_ADMIN_LISTEN=127.0.0.1:{}", app.server().admin_port());
    auto probe = [&](const std::string& env, const std::string& path) {
        return shell("env -u SIDECACHE_ADMIN_TOKEN " + listen + " " + env + " " + scripts + "sidecache-probe " + path)
            .code;
    };
    CHECK(probe("SIDECACHE_ADMIN_TOKEN=probe-t0ken", "/readyz") == 0);
    CHECK(probe("SIDECACHE_ADMIN_TOKEN=probe-t0ken", "/ready") == 0);
    CHECK(probe("", "/readyz") != 0);  // 401
    CHECK(probe("SIDECACHE_ADMIN_TOKEN=wrong", "/readyz") != 0);
    CHECK(probe("", "/healthz") == 0);
    CHECK(probe("SIDECACHE_ADMIN_TOKEN=probe-t0ken", "/nowhere") != 0);  // 404
    app.server().stop();
    CHECK(probe("SIDECACHE_ADMIN_TOKEN=probe-t0ken", "/healthz") != 0);  // nothing listens
}
