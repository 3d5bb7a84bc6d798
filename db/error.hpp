#pragma once
// The db module's errors: one enum, one category (as Beast's http/error.hpp).

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace sidecache::db {

enum class error {
    not_configured = 1,  // database.url is empty: no PostgreSQL at all
    not_ready,           // no connection is up (PostgreSQL down, or still connecting)
    timeout,             // the deadline passed (waiting for a connection, or the query ran long)
    connection_failed,   // connecting, or the connection broke during the query
    query_failed,        // PostgreSQL answered the statement with an error
    unknown_query,       // no db/queries/<name>.sql was loaded under that name
    no_such_user,        // the query returned no row or NULL: not an active user
    migration_failed,    // a migration file failed or is malformed
    shutting_down,       // the pool is stopping
};

// The category of db::error codes, named "sidecache.db".
const boost::system::error_category& category() noexcept;

inline boost::system::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), category()};
}

}  // namespace sidecache::db

template <>
struct boost::system::is_error_code_enum<sidecache::db::error> : std::true_type {};
