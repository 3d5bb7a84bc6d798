#pragma once
// sidecache's command line, separate from main() so tests can run it:
//
//   sidecache --config FILE              run the server
//   sidecache --check-config FILE        load FILE, print "FILE: configuration OK" (exit 0)
//                                        or the error (exit 2); warnings (conf/effective.hpp)
//                                        go to stderr and keep the exit 0
//   sidecache migrate [--down] --config FILE
//   sidecache refresh --config FILE
//   sidecache --version | --help
//
// Exit codes: what the action returns; 2 for bad usage or a bad configuration.

#include "conf/config.hpp"

#include <functional>
#include <iosfwd>
#include <string_view>

namespace sidecache::conf {

// What each command does once the configuration is loaded; main.cpp wires
// them to proxy::run and the db functions. Each returns the exit code. An
// empty function prints "not implemented" and exits 1.
struct cli_actions {
    std::function<int(const config&)> run;
    std::function<int(const config&, bool down)> migrate;
    std::function<int(const config&)> refresh;
};

// Parses argv, loads the configuration and calls the action; messages go to
// std::cout and std::cerr.
int run_cli(int argc, char** argv, const cli_actions& actions);
int run_cli(int argc, char** argv, const cli_actions& actions, std::ostream& out, std::ostream& err);

// "0.1.0"
std::string_view version();

}  // namespace sidecache::conf
