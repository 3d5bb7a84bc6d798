#include "upstream/streamed_head.hpp"

namespace sidecache::upstream {

namespace http = boost::beast::http;

void streamed_head::on_response_impl(int code, boost::beast::string_view reason, int,
                                     boost::system::error_code& ec) {
    status_ = static_cast<unsigned>(code);
    if (!valid_status(status_)) {
        ec = http::error::bad_status;  // a bad upstream answer: 502
        return;
    }
    write_status_line(status_, reason, out_);
}

void streamed_head::on_field_impl(http::field name, boost::beast::string_view name_string,
                                  boost::beast::string_view value, boost::system::error_code&) {
    if (name == http::field::connection) simple_ = simple_ && !names_fields(value);
    if (!is_hop_by_hop(name)) out_.field(name_string, value);
}

}  // namespace sidecache::upstream
