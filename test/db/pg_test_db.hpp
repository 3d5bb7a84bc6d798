#pragma once
// A fresh database for one [pg] test on the server SIDECACHE_TEST_DATABASE_URL
// names: created with the legacy schema (test/fixtures/legacy_schema.sql),
// optionally migrated, dropped at the end.

#include "db/pg_connection.hpp"

#include <optional>
#include <string>

namespace sidecache::test {

class pg_test_db {
public:
    // Fails the test when SIDECACHE_TEST_DATABASE_URL is unset; nullopt (and a
    // Catch2 WARN) only when SIDECACHE_SKIP_PG=1 asks for [pg] tests to be skipped.
    static std::optional<pg_test_db> create(bool migrate);
    pg_test_db(pg_test_db&&) noexcept;
    ~pg_test_db();

    const std::string& url() const { return url_; }
    db::pg_session& session() { return *session_; }
    // Runs SQL (REQUIREs success); the first cell of the first row.
    std::string sql(const std::string& text);
    int migrate(bool down);  // db::run_migrate with this database
    int refresh();           // db::run_refresh with this database
    // pg_terminate_backend(pid), then waits (10 s at most) until the backend
    // has exited: its end of the connection closed (gone from
    // pg_stat_activity is not yet that far). False if it did not.
    bool terminate(const std::string& pid);
    // The same for every other backend connected to this database (a
    // restart, as the clients see it); false if one did not exit.
    bool terminate_others();

private:
    pg_test_db() = default;
    std::string admin_url_, url_, name_;
    std::optional<db::pg_session> session_;
};

// The source tree (SIDECACHE_SOURCE_DIR at build time).
std::string source_dir();

}  // namespace sidecache::test
