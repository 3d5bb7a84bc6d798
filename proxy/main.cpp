// The sidecache binary: the command line of conf/cli.hpp wired to the server
// and the database tasks.

#include "conf/cli.hpp"
#include "proxy/app.hpp"

#include <iostream>

int main(int argc, char** argv) {
    sidecache::conf::cli_actions actions;
    actions.run = [](const sidecache::conf::config& cfg) { return sidecache::proxy::run(cfg); };
    actions.migrate = [](const sidecache::conf::config&, bool /*down*/) {
        std::cerr << "sidecache migrate: not implemented\n";
        return 1;
    };
    actions.refresh = [](const sidecache::conf::config&) {
        std::cerr << "sidecache refresh: not implemented\n";
        return 1;
    };
    return sidecache::conf::run_cli(argc, argv, actions);
}
