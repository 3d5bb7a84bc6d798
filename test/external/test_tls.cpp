// HTTPS to the external API: certificates verified by default (chain and
// host name), SNI sent, verification off only when configured. Against a
// small Node HTTPS server with a certificate made for the test by openssl.
#include "external/client.hpp"
#include "external/external_test_support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

using namespace sidecache;
using namespace sidecache::external;
namespace net = boost::asio;
namespace fs = std::filesystem;

namespace {

// Answers GET /v1/convai/agents/{id} with xi-api-key "k": the agent's name
// says which SNI name the TLS handshake carried.
const char* server_js = R"JS(
const https = require('node:https'), fs = require('node:fs');
const [key, cert] = process.argv.slice(2);
const server = https.createServer({key: fs.readFileSync(key), cert: fs.readFileSync(cert)}, (req, res) => {
  const ok = req.headers['xi-api-key'] === 'k' && req.url.startsWith('/v1/convai/agents/');
  res.writeHead(ok ? 200 : 401, {'Content-Type': 'application/json'});
  res.end(JSON.stringify(ok ? {name: 'sni=' + req.socket.servername,
                               conversation_config: {agent: {language: 'en'}}} : {detail: {}}));
});
server.listen(0, '127.0.0.1', () => process.stdout.write('listening ' + server.address().port + '\n'));
)JS";

class tls_server {
public:
    tls_server() {
        const auto node = test::on_path("node"), openssl = test::on_path("openssl");
        if (node.empty() || openssl.empty()) return;
        char tmpl[] = "/tmp/sidecache-tls.XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir_ = tmpl;
        cert_ = (dir_ / "cert.pem").string();
        const auto key = (dir_ / "key.pem").string();
        const std::string cmd = openssl +
                                " req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
                                " -addext subjectAltName=DNS:localhost -keyout " +
                                key + " -out " + cert_ + " >/dev/null 2>&1";
        REQUIRE(std::system(cmd.c_str()) == 0);
        const auto script = (dir_ / "server.js").string();
        REQUIRE(std::ofstream(script) << server_js);
        server_.emplace("'" + script + "' '" + key + "' '" + cert_ + "'");
    }
    ~tls_server() {
        server_.reset();  // stopped before its files go
        if (!dir_.empty()) fs::remove_all(dir_);
    }
    std::uint16_t port() const { return server_ ? server_->port() : 0; }
    const std::string& cert() const { return cert_; }

private:
    fs::path dir_;
    std::string cert_;
    std::optional<test::node_server> server_;
};

conf::external_config https_config(const std::string& host, std::uint16_t port) {
    conf::external_config c;
    c.url.scheme = "https";
    c.url.host = host;
    c.url.port = port;
    c.api_key = "k";
    return c;
}

agent_outcome lookup(const conf::external_config& cfg) {
    net::io_context ioc;
    external::client client(cfg);
    auto f = net::co_spawn(
        ioc,
        client.agent_config("agent_tls", client.deadline_for(retry_mode::foreground), retry_mode::foreground),
        net::use_future);
    ioc.run();
    return f.get();
}

// SSL_CERT_FILE is where OpenSSL's default verify paths look; restored after.
struct trust_file {
    std::string old;
    bool had = false;
    explicit trust_file(const std::string& file) {
        if (const char* v = std::getenv("SSL_CERT_FILE")) {
            old = v;
            had = true;
        }
        ::setenv("SSL_CERT_FILE", file.c_str(), 1);
    }
    ~trust_file() {
        had ? (void)::setenv("SSL_CERT_FILE", old.c_str(), 1) : (void)::unsetenv("SSL_CERT_FILE");
    }
};

}  // namespace

TEST_CASE("https: verified certificate, SNI, and verification off only on request", "[integration]") {
    tls_server server;
    if (server.port() == 0) {
        WARN("node or openssl missing: test skipped");
        return;
    }
    SECTION("trusted certificate for the host: ok, SNI carried the host name") {
        trust_file trust(server.cert());
        auto o = lookup(https_config("localhost", server.port()));
        REQUIRE(o.status == config_status::ok);
        CHECK(o.config->at("name") == "sni=localhost");
        CHECK(o.config->at("language") == "en");
        CHECK(o.config->at("llm").is_null());
    }
    SECTION("self-signed certificate not trusted: unavailable") {
        trust_file trust("/nonexistent/ca.pem");
        auto o = lookup(https_config("localhost", server.port()));
        CHECK(o.status == config_status::unavailable);
        CHECK_FALSE(o.config);
    }
    SECTION("trusted certificate, wrong host name: unavailable") {
        trust_file trust(server.cert());
        auto o = lookup(https_config("127.0.0.1", server.port()));
        CHECK(o.status == config_status::unavailable);
    }
    SECTION("verify_tls: false accepts it") {
        trust_file trust("/nonexistent/ca.pem");
        auto cfg = https_config("localhost", server.port());
        cfg.verify_tls = false;
        auto o = lookup(cfg);
        REQUIRE(o.status == config_status::ok);
        CHECK(o.config->at("name") == "sni=localhost");
    }
}
