// conf::run_cli on real files: exit codes, messages, and which action runs
// with which configuration.

#include "conf/cli.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

using namespace sidecache::conf;

namespace {

// A file in a fresh temporary folder, removed with the folder.
class temp_file {
public:
    explicit temp_file(const std::string& text) {
        static std::atomic<int> counter{0};
        dir_ = std::filesystem::temp_directory_path() /
               ("sidecache-conf-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        std::filesystem::create_directories(dir_);
        path_ = (dir_ / "sidecache.yaml").string();
        std::ofstream(path_) << text;
    }
    ~temp_file() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    const std::string& path() const { return path_; }

private:
    std::filesystem::path dir_;
    std::string path_;
};

struct outcome {
    int code;
    std::string out;
    std::string err;
};

// What the actions were called with.
struct calls {
    std::vector<std::string> log;  // "run FILE", "migrate FILE down", ...
    int exit_code = 0;
};

cli_actions recording(calls& c) {
    cli_actions a;
    a.run = [&c](const config& cfg) {
        c.log.push_back("run " + cfg.source_file + " port " + std::to_string(cfg.upstream.url.port));
        return c.exit_code;
    };
    a.migrate = [&c](const config& cfg, bool down) {
        c.log.push_back("migrate " + cfg.source_file + (down ? " down" : " up"));
        return c.exit_code;
    };
    a.refresh = [&c](const config& cfg) {
        c.log.push_back("refresh " + cfg.source_file);
        return c.exit_code;
    };
    return a;
}

outcome run(std::vector<std::string> args, const cli_actions& actions) {
    args.insert(args.begin(), "sidecache");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::ostringstream out;
    std::ostringstream err;
    int code = run_cli(static_cast<int>(args.size()), argv.data(), actions, out, err);
    return {code, out.str(), err.str()};
}

const std::string good_yaml = "upstream:\n  url: http://127.0.0.1:3999\n";
const std::string bad_yaml = "upstream:\n  url: http://127.0.0.1:3999\nserver:\n  threads: lots\n";

}  // namespace

TEST_CASE("sidecache --check-config FILE: OK with exit 0, or the error with exit 2", "[integration]") {
    calls c;
    temp_file good(good_yaml);
    temp_file bad(bad_yaml);

    auto ok = run({"--check-config", good.path()}, recording(c));
    CHECK(ok.code == 0);
    CHECK(ok.out == good.path() + ": configuration OK\n");
    CHECK(ok.err.empty());

    auto ko = run({"--check-config", bad.path()}, recording(c));
    CHECK(ko.code == 2);
    CHECK(ko.out.empty());
    CHECK(ko.err == bad.path() + ":4:12: server.threads: \"lots\" is not a whole number\n");

    auto missing = run({"--check-config", good.path() + ".missing"}, recording(c));
    CHECK(missing.code == 2);
    CHECK(missing.err ==
          good.path() + ".missing: cannot read the configuration file: No such file or directory\n");

    CHECK(c.log.empty());  // checking runs nothing
}

TEST_CASE("sidecache --check-config warns about an open admin listener without a token, exit 0", "[integration]") {
    calls c;
    temp_file open(good_yaml + "admin:\n  listen: 0.0.0.0:9901\n");
    auto warned = run({"--check-config", open.path()}, recording(c));
    CHECK(warned.code == 0);
    CHECK(warned.out == open.path() + ": configuration OK\n");
    CHECK(warned.err.starts_with("sidecache: warning: " + open.path() + ": admin.listen 0.0.0.0:9901 is "
                                 "reachable from other hosts and admin.token is empty"));

    temp_file with_token(good_yaml + "admin:\n  listen: 0.0.0.0:9901\n  token: t0ken\n");
    auto quiet = run({"--check-config", with_token.path()}, recording(c));
    CHECK(quiet.code == 0);
    CHECK(quiet.err.empty());
    temp_file loopback(good_yaml + "admin:\n  listen: 127.0.0.1:9901\n");
    CHECK(run({"--check-config", loopback.path()}, recording(c)).err.empty());
}

TEST_CASE("sidecache --config FILE: a bad file exits 2 before anything runs", "[integration]") {
    calls c;
    temp_file bad(bad_yaml);
    auto r = run({"--config", bad.path()}, recording(c));
    CHECK(r.code == 2);
    CHECK(r.err == bad.path() + ":4:12: server.threads: \"lots\" is not a whole number\n");
    CHECK(c.log.empty());

    auto m = run({"migrate", "--config", bad.path()}, recording(c));
    CHECK(m.code == 2);
    CHECK(m.err == r.err);
    CHECK(c.log.empty());
}

TEST_CASE("each command runs its action with the loaded configuration", "[integration]") {
    calls c;
    c.exit_code = 7;
    temp_file good(good_yaml);
    const std::string& f = good.path();

    CHECK(run({"--config", f}, recording(c)).code == 7);
    CHECK(run({"--config=" + f}, recording(c)).code == 7);
    CHECK(run({"-c", f}, recording(c)).code == 7);
    CHECK(run({"migrate", "--config", f}, recording(c)).code == 7);
    CHECK(run({"migrate", "--down", "--config", f}, recording(c)).code == 7);
    CHECK(run({"migrate", "--config", f, "--down"}, recording(c)).code == 7);
    CHECK(run({"refresh", "--config", f}, recording(c)).code == 7);
    CHECK(c.log == std::vector<std::string>{
                       "run " + f + " port 3999",
                       "run " + f + " port 3999",
                       "run " + f + " port 3999",
                       "migrate " + f + " up",
                       "migrate " + f + " down",
                       "migrate " + f + " down",
                       "refresh " + f,
                   });
}

TEST_CASE("bad usage prints the usage to stderr and exits 2", "[integration]") {
    calls c;
    temp_file good(good_yaml);
    auto [args, first_line] = GENERATE_REF(table<std::vector<std::string>, std::string>({
        {std::vector<std::string>{}, "sidecache: no command given"},
        {{"--bogus"}, "sidecache: unknown option --bogus"},
        {{"--config", good.path(), "--verbose"}, "sidecache: unknown option --verbose"},
        {{"--down", "--config", good.path()}, "sidecache: unknown option --down"},
        {{"refresh", "--down", "--config", good.path()}, "sidecache: unknown option --down"},
        {{"serve", "--config", good.path()}, "sidecache: unexpected argument serve"},
        {{"--config"}, "sidecache: --config needs a FILE"},
        {{"migrate"}, "sidecache: --config FILE is required"},
        {{"--config", good.path(), "--config", good.path()}, "sidecache: --config given twice"},
        {{"--check-config"}, "sidecache: --check-config takes exactly one FILE"},
        {{"--check-config", good.path(), "extra"}, "sidecache: --check-config takes exactly one FILE"},
    }));
    CAPTURE(args);
    auto r = run(args, recording(c));
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.starts_with(first_line + "\nusage: sidecache --config FILE"));
    CHECK(c.log.empty());
}

TEST_CASE("sidecache --version and --help print to stdout and exit 0", "[integration]") {
    calls c;
    auto v = run({"--version"}, recording(c));
    CHECK(v.code == 0);
    CHECK(v.out == "sidecache 0.1.0\n");
    auto h = run({"--help"}, recording(c));
    CHECK(h.code == 0);
    CHECK(h.out.starts_with("usage: sidecache --config FILE"));
    CHECK(h.out.find("sidecache migrate [--down] --config FILE") != std::string::npos);
    CHECK(h.err.empty());
}

TEST_CASE("a missing or failing action exits 1 with a message", "[integration]") {
    temp_file good(good_yaml);
    cli_actions none;
    auto r = run({"refresh", "--config", good.path()}, none);
    CHECK(r.code == 1);
    CHECK(r.err == "sidecache refresh: not implemented\n");

    cli_actions throwing;
    throwing.run = [](const config&) -> int { throw std::runtime_error("cannot bind 127.0.0.1:8080"); };
    auto t = run({"--config", good.path()}, throwing);
    CHECK(t.code == 1);
    CHECK(t.err == "sidecache run: cannot bind 127.0.0.1:8080\n");
}
