#include "l2/error.hpp"

#include <string>

namespace sidecache::l2 {
namespace {

class category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "sidecache.l2"; }
    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
        case error::timeout:
            return "redis operation timed out";
        case error::unavailable:
            return "redis unavailable";
        case error::breaker_open:
            return "redis breaker open";
        case error::protocol:
            return "redis protocol error";
        case error::server:
            return "redis refused the connection's AUTH or SELECT";
        }
        return "unknown l2 error";
    }
};

}  // namespace

const boost::system::error_category& category() noexcept {
    static const category_impl instance;
    return instance;
}

}  // namespace sidecache::l2
