#pragma once
// `sidecache migrate` and `sidecache refresh`: blocking, for the command line
// (and the db thread at start). They print what they do on stdout, errors on
// stderr, and return the process exit code (0 success).
//
// Migrations are the files database.migrations_dir/NNN_name.sql, applied in
// NNN order and recorded in sidecache.schema_migrations; NNN_name.down.sql
// undoes one. A file whose first line is "-- sidecache:no-transaction" runs
// statement by statement outside a transaction (CREATE INDEX CONCURRENTLY);
// the others run in one transaction with their record. A relative
// migrations_dir is relative to the current working directory.

#include "conf/config.hpp"

namespace sidecache::db {

// Applies the pending migrations (down: undoes every applied one, newest
// first, then drops the sidecache schema). Idempotent; under an advisory
// lock so that two sidecars starting together do not race.
int run_migrate(const conf::config& cfg, bool down);

// Refreshes the materialized views now (skipped, exit 0, when another
// sidecar is refreshing).
int run_refresh(const conf::config& cfg);

}  // namespace sidecache::db
