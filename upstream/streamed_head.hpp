#pragma once
// Copies an upstream response head into the client's head as Beast's parser
// meets it: the status line, then the fields as the upstream sent them minus
// hop-by-hop ones (head_rules.hpp), with no http::fields built (no
// allocation per field, no tree, no second pass). The caller ends the head
// (end_response_head). What it does not handle (simple() false: an interim
// 1xx, a Connection naming other fields, a head too large for the writer)
// is parsed again by an http::parser from the same, unconsumed bytes.

#include "upstream/head_rules.hpp"

#include <boost/beast/http/basic_parser.hpp>

namespace sidecache::upstream {

class streamed_head final : public boost::beast::http::basic_parser<false> {
public:
    explicit streamed_head(head_writer& out) : out_(out) {}

    unsigned status() const { return status_; }
    bool simple() const { return simple_ && out_.ok() && status_ / 100 != 1; }

private:
    void on_request_impl(boost::beast::http::verb, boost::beast::string_view, boost::beast::string_view, int,
                         boost::system::error_code&) override {}
    void on_response_impl(int code, boost::beast::string_view reason, int,
                          boost::system::error_code&) override;
    void on_field_impl(boost::beast::http::field name, boost::beast::string_view name_string,
                       boost::beast::string_view value, boost::system::error_code&) override;
    void on_header_impl(boost::system::error_code&) override {}
    void on_body_init_impl(const boost::optional<std::uint64_t>&, boost::system::error_code&) override {}
    std::size_t on_body_impl(boost::beast::string_view body, boost::system::error_code&) override {
        return body.size();
    }
    void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, boost::system::error_code&) override {
    }
    std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                                   boost::system::error_code&) override {
        return body.size();
    }
    void on_finish_impl(boost::system::error_code&) override {}

    head_writer& out_;
    unsigned status_ = 0;
    bool simple_ = true;
};

}  // namespace sidecache::upstream
