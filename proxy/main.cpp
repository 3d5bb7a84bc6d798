// The sidecache binary: the command line of conf/cli.hpp wired to the server
// and the database tasks.

#include "conf/cli.hpp"
#include "db/migrate.hpp"
#include "proxy/app.hpp"

int main(int argc, char** argv) {
    sidecache::conf::cli_actions actions;
    actions.run = [](const sidecache::conf::config& cfg) { return sidecache::proxy::run(cfg); };
    actions.migrate = [](const sidecache::conf::config& cfg, bool down) {
        return sidecache::db::run_migrate(cfg, down);
    };
    actions.refresh = [](const sidecache::conf::config& cfg) { return sidecache::db::run_refresh(cfg); };
    return sidecache::conf::run_cli(argc, argv, actions);
}
