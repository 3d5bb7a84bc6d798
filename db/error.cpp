#include "db/error.hpp"

#include <string>

namespace sidecache::db {
namespace {

class category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "sidecache.db"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::not_configured: return "no database configured";
        case errc::not_ready: return "no database connection is up";
        case errc::timeout: return "database deadline exceeded";
        case errc::connection_failed: return "database connection failed";
        case errc::query_failed: return "database query failed";
        case errc::unknown_query: return "unknown query name";
        case errc::no_such_user: return "no such active user";
        case errc::migration_failed: return "migration failed";
        case errc::shutting_down: return "database pool shutting down";
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
