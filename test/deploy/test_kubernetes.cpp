// deploy/kubernetes/: valid YAML of the kinds kustomization.yaml lists, and
// consistent with sidecache: the ConfigMap's file loads with the Secret's
// variables, the probes ask the admin port the file listens on for /healthz
// and /readyz, the grace period outlasts preStop plus server.drain_timeout.

#include "conf/loader.hpp"

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace sidecache;

namespace {

const std::string dir = std::string(SIDECACHE_SOURCE_DIR) + "/deploy/kubernetes/";

// Every document of every file kustomization.yaml lists, by kind.
std::map<std::string, YAML::Node> documents() {
    auto kustomization = YAML::LoadFile(dir + "kustomization.yaml");
    REQUIRE(kustomization["kind"].as<std::string>() == "Kustomization");
    std::map<std::string, YAML::Node> by_kind;
    for (const auto& file : kustomization["resources"]) {
        for (const auto& doc : YAML::LoadAllFromFile(dir + file.as<std::string>())) {
            CAPTURE(file.as<std::string>());
            REQUIRE(doc["apiVersion"].IsScalar());
            REQUIRE(doc["metadata"]["name"].IsScalar());
            const auto kind = doc["kind"].as<std::string>();
            REQUIRE(by_kind.count(kind) == 0);
            by_kind[kind] = doc;
        }
    }
    return by_kind;
}

YAML::Node container(const YAML::Node& deployment, const std::string& name) {
    for (const auto& c : deployment["spec"]["template"]["spec"]["containers"])
        if (c["name"].as<std::string>() == name) return c;
    FAIL("no container " << name);
    return {};
}

int port_named(const YAML::Node& c, const std::string& name) {
    for (const auto& p : c["ports"])
        if (p["name"].as<std::string>() == name) return p["containerPort"].as<int>();
    FAIL("no port " << name);
    return 0;
}

int prestop_sleep(const YAML::Node& c) {
    const auto cmd = c["lifecycle"]["preStop"]["exec"]["command"];
    REQUIRE(cmd[0].as<std::string>() == "sleep");
    return cmd[1].as<int>();
}

}  // namespace

TEST_CASE("the Kubernetes manifests: a sidecar whose probes, ports, secrets and grace period fit its configuration",
          "[unit]") {
    auto docs = documents();
    REQUIRE(docs.count("Deployment") == 1);
    REQUIRE(docs.count("ConfigMap") == 1);
    REQUIRE(docs.count("Secret") == 1);
    REQUIRE(docs.count("Service") == 1);
    const auto deployment = docs["Deployment"];
    const auto pod = deployment["spec"]["template"]["spec"];
    const auto sidecache = container(deployment, "sidecache");
    const auto legacy = container(deployment, "legacy");

    // The environment sidecache gets: its env values and the Secret's keys.
    const auto secret = docs["Secret"];
    REQUIRE(sidecache["envFrom"][0]["secretRef"]["name"].as<std::string>() ==
            secret["metadata"]["name"].as<std::string>());
    std::map<std::string, std::string, std::less<>> env;
    for (const auto& kv : secret["stringData"]) env[kv.first.as<std::string>()] = kv.second.as<std::string>();
    for (const auto& e : sidecache["env"]) env[e["name"].as<std::string>()] = e["value"].as<std::string>();
    for (auto name : {"JWT_SECRET", "DATABASE_URL", "ELEVENLABS_API_KEY", "SIDECACHE_ADMIN_TOKEN"}) {
        CAPTURE(name);
        CHECK(env.count(name) == 1);
    }

    // The ConfigMap's file, mounted where --config points, loads with that
    // environment (an unset ${NAME} without default would fail).
    const auto config_map = docs["ConfigMap"];
    REQUIRE(pod["volumes"][0]["configMap"]["name"].as<std::string>() ==
            config_map["metadata"]["name"].as<std::string>());
    const auto mount = sidecache["volumeMounts"][0]["mountPath"].as<std::string>();
    const auto args = sidecache["args"].as<std::vector<std::string>>();
    REQUIRE(args.size() == 2);
    CHECK(args[0] == "--config");
    REQUIRE(args[1].starts_with(mount + "/"));
    const auto file = args[1].substr(mount.size() + 1);
    const auto text = config_map["data"][file].as<std::string>();
    const auto cfg = conf::load_string(text, file, [&env](std::string_view name) -> std::optional<std::string> {
        auto it = env.find(name);
        if (it == env.end()) return std::nullopt;
        return it->second;
    });

    // Ports: clients to server.listen, probes to admin.listen, the legacy where upstream.url points.
    CHECK(port_named(sidecache, "http") == cfg.server.listen.port);
    CHECK(port_named(sidecache, "admin") == cfg.admin.listen.port);
    CHECK(port_named(legacy, "legacy") == cfg.upstream.url.port);
    CHECK(cfg.upstream.url.host == "127.0.0.1");
    CHECK(docs["Service"]["spec"]["ports"][0]["targetPort"].as<std::string>() == "http");
    // On the pod's address for the kubelet: with a token (no warning).
    CHECK(cfg.admin.listen.host == "0.0.0.0");
    CHECK(cfg.admin.token == env["SIDECACHE_ADMIN_TOKEN"]);
    CHECK(env["SIDECACHE_ADMIN_LISTEN"] == "0.0.0.0:" + std::to_string(cfg.admin.listen.port));
    CHECK(cfg.upstream.health_check_interval.count() > 0);

    // Probes: liveness on /healthz (no token needed), readiness /readyz
    // through sidecache-probe (it sends the token).
    for (auto probe : {"livenessProbe", "startupProbe"}) {
        CAPTURE(probe);
        CHECK(sidecache[probe]["httpGet"]["path"].as<std::string>() == "/healthz");
        CHECK(sidecache[probe]["httpGet"]["port"].as<std::string>() == "admin");
    }
    const auto readiness = sidecache["readinessProbe"]["exec"]["command"].as<std::vector<std::string>>();
    CHECK(readiness == std::vector<std::string>{"/usr/local/bin/sidecache-probe", "/readyz"});

    // Shutdown: the grace period outlasts preStop + drain; the legacy
    // outlives sidecache's drain.
    const auto grace = pod["terminationGracePeriodSeconds"].as<int>();
    const auto drain_s = std::chrono::duration_cast<std::chrono::seconds>(cfg.server.drain_timeout).count();
    CHECK(prestop_sleep(sidecache) > 0);
    CHECK(grace > prestop_sleep(sidecache) + drain_s);
    CHECK(prestop_sleep(legacy) >= prestop_sleep(sidecache) + drain_s);
    CHECK(grace > prestop_sleep(legacy));

    // Resources on both containers.
    for (const auto& c : {sidecache, legacy}) {
        CHECK(c["resources"]["requests"]["cpu"].IsScalar());
        CHECK(c["resources"]["requests"]["memory"].IsScalar());
        CHECK(c["resources"]["limits"]["memory"].IsScalar());
    }
}
