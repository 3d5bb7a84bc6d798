#pragma once
// The loaded configuration seen from outside: as JSON for the admin API's
// GET /config (secrets redacted), and the warnings a valid but risky
// configuration deserves (printed by --check-config and at start).

#include "conf/config.hpp"

#include <boost/json/object.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace sidecache::conf {

// What a secret reads as in to_json().
inline constexpr std::string_view redacted = "[redacted]";

// Every key of `cfg` under its YAML name; durations and sizes spelled as in
// the YAML ("30s", "256MiB"). auth.jwt_secret, external.api_key and
// admin.token read "[redacted]" when set ("" when not), and the password of
// database.url (user:PASSWORD@ or password=...) is replaced by it.
boost::json::object to_json(const config& cfg);

// `url` with any password in it replaced: "postgresql://u:[redacted]@h/db",
// "host=h password=[redacted]", "...?password=[redacted]".
std::string redact_url(std::string_view url);

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback(std::string_view host);

// One line each, without "sidecache: " or a newline: an admin listener
// reachable from other hosts without admin.token.
std::vector<std::string> warnings(const config& cfg);

}  // namespace sidecache::conf
