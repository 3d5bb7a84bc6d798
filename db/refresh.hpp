#pragma once
// Refreshing the materialized views (docs/freshness.md): the statements, in
// order, for the scheduled (async) and the command-line (blocking) paths.

#include "db/policy.hpp"

#include <array>
#include <string>
#include <string_view>

namespace sidecache::db {

// Advisory lock keys (two-int form, first int 1399742796 = "sidecache").
// 1: the writers' lock: the calls triggers hold it shared for their
//    transaction, a refresh takes it exclusively while it starts its snapshot.
// 2: one refreshing sidecar at a time (try-lock; others skip).
// 3: one migrating sidecar at a time.
// 4: the refresher leader: held for its session by the one sidecar whose
//    schedule decides refreshes (try-lock each refresh_interval; others wait).
inline constexpr std::string_view refresh_try_lock_sql = "SELECT pg_try_advisory_lock(1399742796, 2)";
inline constexpr std::string_view refresh_unlock_sql = "SELECT pg_advisory_unlock(1399742796, 2)";
inline constexpr std::string_view refresh_abort_sql = "ROLLBACK; SELECT pg_advisory_unlock_all()";
inline constexpr std::string_view leader_try_lock_sql = "SELECT pg_try_advisory_lock(1399742796, 4)";
// "<refreshes logged> <day moved 0|1> <marked users>" (migration 008).
inline constexpr std::string_view refresh_facts_sql = "SELECT sidecache.refresh_facts()";

// After the try-lock succeeded: wait for in-flight writers, take the
// REPEATABLE READ snapshot, let writers go again, refresh (logged with
// `reason` and `by`, see migration 008), commit. `by` is kept to letters,
// digits and ".:_-" (it is quoted into the SQL).
inline std::array<std::string, 6> refresh_steps(refresh_reason reason, std::string_view by) {
    std::string who;
    for (char c : by)
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
            c == ':' || c == '_' || c == '-')
            who += c;
    return {
        "SELECT pg_advisory_lock(1399742796, 1)",
        "BEGIN ISOLATION LEVEL REPEATABLE READ",
        "SELECT 1",  // the transaction's snapshot is taken here, under the lock
        "SELECT pg_advisory_unlock(1399742796, 1)",
        "SELECT sidecache.refresh_views_logged('" + std::string(to_string(reason)) + "', '" + who + "')",
        "COMMIT",
    };
}

// host:pid of this process, for the log's `by`.
std::string refresher_name();

}  // namespace sidecache::db
