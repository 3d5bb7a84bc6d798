#pragma once
// Refreshing the materialized views (docs/freshness.md): the statements, in
// order, for the scheduled (async) and the command-line (blocking) paths.

#include <span>
#include <string_view>

namespace sidecache::db {

// Advisory lock keys (two-int form, first int 1399742796 = "sidecache").
// 1: the writers' lock: the calls triggers hold it shared for their
//    transaction, a refresh takes it exclusively while it starts its snapshot.
// 2: one refreshing sidecar at a time (try-lock; others skip).
// 3: one migrating sidecar at a time.
inline constexpr std::string_view refresh_try_lock_sql = "SELECT pg_try_advisory_lock(1399742796, 2)";
inline constexpr std::string_view refresh_unlock_sql = "SELECT pg_advisory_unlock(1399742796, 2)";
inline constexpr std::string_view refresh_abort_sql = "ROLLBACK; SELECT pg_advisory_unlock_all()";

// After the try-lock succeeded: wait for in-flight writers, take the
// REPEATABLE READ snapshot, let writers go again, refresh, commit.
inline constexpr std::string_view refresh_steps_sql[] = {
    "SELECT pg_advisory_lock(1399742796, 1)",
    "BEGIN ISOLATION LEVEL REPEATABLE READ",
    "SELECT 1",  // the transaction's snapshot is taken here, under the lock
    "SELECT pg_advisory_unlock(1399742796, 1)",
    "SELECT sidecache.refresh_views()",
    "COMMIT",
};

}  // namespace sidecache::db
