#include "proxy/error.hpp"

#include <string>

namespace sidecache::proxy {
namespace {

class category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "sidecache.proxy"; }

    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
        case error::header_too_large:
            return "request header fields too large";
        case error::body_too_large:
            return "request body too large";
        case error::header_timeout:
            return "request head not received in time";
        case error::bad_request:
            return "malformed request";
        case error::ambiguous_framing:
            return "ambiguous request framing";
        case error::upstream_unavailable:
            return "the backend is unavailable";
        case error::upstream_timeout:
            return "the backend did not answer in time";
        }
        return "sidecache.proxy error";
    }
};

}  // namespace

const boost::system::error_category& category() noexcept {
    static const category_impl instance;
    return instance;
}

}  // namespace sidecache::proxy
