// parse_url: redis://[user:password@]host[:port][/db] to client_options.

#include "l2/client.hpp"

#include <boost/system/errc.hpp>
#include <boost/url/parse.hpp>

#include <charconv>

namespace sidecache::l2 {
namespace {

boost::system::error_code invalid() {
    return make_error_code(boost::system::errc::invalid_argument);
}

// "/3" -> 3, "" or "/" -> 0; anything else is refused.
boost::system::result<int> parse_db(std::string_view path) {
    if (path.empty() || path == "/") return 0;
    path.remove_prefix(1);
    int db = 0;
    auto [end, ec] = std::from_chars(path.data(), path.data() + path.size(), db);
    if (ec != std::errc{} || end != path.data() + path.size() || db < 0) return invalid();
    return db;
}

}  // namespace

boost::system::result<client_options> parse_url(std::string_view url) {
    auto u = boost::urls::parse_absolute_uri(url);
    if (!u) return u.error();
    if (u->scheme() != "redis" || u->encoded_host().empty() || u->has_query() || u->has_fragment()) {
        return invalid();
    }
    client_options opts;
    opts.host = u->host_address();  // an IPv6 literal without its brackets
    if (u->has_port()) {
        // port(), not port_number(): Boost.URL wraps a number past 65535.
        const auto text = u->port();
        unsigned port = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
        if (ec != std::errc{} || end != text.data() + text.size() || port == 0 || port > 65535)
            return invalid();
        opts.port = static_cast<std::uint16_t>(port);
    }
    if (u->has_userinfo()) {
        opts.user = u->user();
        opts.password = u->password();  // "redis://:secret@host": no user, a password
    }
    auto db = parse_db(u->path());
    if (!db) return db.error();
    opts.db = *db;
    return opts;
}

}  // namespace sidecache::l2
