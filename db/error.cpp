#include "db/error.hpp"

#include <string>

namespace sidecache::db {
namespace {

class category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "sidecache.db"; }
    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
        case error::not_configured:
            return "no database configured";
        case error::not_ready:
            return "no database connection is up";
        case error::timeout:
            return "database deadline exceeded";
        case error::connection_failed:
            return "database connection failed";
        case error::query_failed:
            return "database query failed";
        case error::unknown_query:
            return "unknown query name";
        case error::no_such_user:
            return "no such active user";
        case error::migration_failed:
            return "migration failed";
        case error::shutting_down:
            return "database pool shutting down";
        }
        return "unknown db error";
    }
};

}  // namespace

const boost::system::error_category& category() noexcept {
    static const category_impl instance;
    return instance;
}

}  // namespace sidecache::db
