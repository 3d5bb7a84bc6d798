#include "conf/cli.hpp"

#include "conf/effective.hpp"
#include "conf/loader.hpp"

#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#ifndef SIDECACHE_VERSION
#error "SIDECACHE_VERSION is defined by conf/CMakeLists.txt from the project version"
#endif

namespace sidecache::conf {

namespace {

constexpr std::string_view usage_text =
    "usage: sidecache --config FILE              run the caching proxy\n"
    "       sidecache --check-config FILE        check FILE and exit (0: OK, 2: error)\n"
    "       sidecache migrate [--down] --config FILE\n"
    "                                            apply (or roll back) the database migrations\n"
    "       sidecache refresh --config FILE      refresh the materialized views once\n"
    "       sidecache --version | --help\n"
    "\n"
    "FILE is YAML; ${NAME} and ${NAME:-default} in values come from the environment.\n"
    "See conf/sidecache.example.yaml for every key and its default.\n";

int usage_error(std::ostream& err, const std::string& message) {
    err << "sidecache: " << message << "\n" << usage_text;
    return 2;
}

enum class command { run, migrate, refresh };

}  // namespace

std::string_view version() {
    return SIDECACHE_VERSION;
}

int run_cli(int argc, char** argv, const cli_actions& actions) {
    return run_cli(argc, argv, actions, std::cout, std::cerr);
}

int run_cli(int argc, char** argv, const cli_actions& actions, std::ostream& out, std::ostream& err) {
    std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
    if (args.empty()) return usage_error(err, "no command given");

    if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
        out << usage_text;
        return 0;
    }
    if (args.size() == 1 && args[0] == "--version") {
        out << "sidecache " << version() << "\n";
        return 0;
    }
    if (args[0] == "--check-config") {
        if (args.size() != 2) return usage_error(err, "--check-config takes exactly one FILE");
        config checked;
        try {
            checked = load_file(args[1]);
        } catch (const error& e) {
            err << e.what() << "\n";
            return 2;
        }
        // Valid but risky: said on stderr, the exit stays 0.
        for (const auto& w : warnings(checked)) err << "sidecache: warning: " << w << "\n";
        out << args[1] << ": configuration OK\n";
        return 0;
    }

    command cmd = command::run;
    std::size_t i = 0;
    if (args[0] == "migrate") {
        cmd = command::migrate;
        ++i;
    } else if (args[0] == "refresh") {
        cmd = command::refresh;
        ++i;
    }

    std::optional<std::string> file;
    bool down = false;
    for (; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--config" || a == "-c") {
            if (i + 1 >= args.size()) return usage_error(err, a + " needs a FILE");
            if (file) return usage_error(err, "--config given twice");
            file = args[++i];
        } else if (a.starts_with("--config=")) {
            if (file) return usage_error(err, "--config given twice");
            file = a.substr(std::string_view("--config=").size());
        } else if (a == "--down" && cmd == command::migrate) {
            down = true;
        } else if (a.starts_with("-")) {
            return usage_error(err, "unknown option " + a);
        } else {
            return usage_error(err, "unexpected argument " + a);
        }
    }
    if (!file || file->empty()) return usage_error(err, "--config FILE is required");

    config cfg;
    try {
        cfg = load_file(*file);
    } catch (const error& e) {
        err << e.what() << "\n";
        return 2;
    }

    const char* name = cmd == command::run ? "run" : cmd == command::migrate ? "migrate" : "refresh";
    try {
        switch (cmd) {
        case command::run:
            if (actions.run) return actions.run(cfg);
            break;
        case command::migrate:
            if (actions.migrate) return actions.migrate(cfg, down);
            break;
        case command::refresh:
            if (actions.refresh) return actions.refresh(cfg);
            break;
        }
    } catch (const std::exception& e) {
        // An action's unexpected failure: said once, here, with a non-zero exit.
        err << "sidecache " << name << ": " << e.what() << "\n";
        return 1;
    }
    err << "sidecache " << name << ": not implemented\n";
    return 1;
}

}  // namespace sidecache::conf
