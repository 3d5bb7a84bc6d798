#include "upstream/error.hpp"

#include <string>

namespace sidecache::upstream {
namespace {

class category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "sidecache.upstream"; }

    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
        case error::refused:
            return "upstream connection refused";
        case error::connect_timeout:
            return "upstream connect timed out";
        case error::response_timeout:
            return "upstream response timed out";
        case error::closed:
            return "upstream closed the connection";
        case error::bad_response:
            return "upstream sent an invalid response";
        case error::body_too_large:
            return "upstream response body too large";
        case error::pool_exhausted:
            return "no upstream connection available";
        }
        return "sidecache.upstream error";
    }
};

}  // namespace

const boost::system::error_category& category() noexcept {
    static const category_impl instance;
    return instance;
}

}  // namespace sidecache::upstream
