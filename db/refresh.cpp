#include "db/refresh.hpp"

#include <fmt/format.h>
#include <unistd.h>

namespace sidecache::db {

std::string refresher_name() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    return fmt::format("{}:{}", host[0] ? host : "unknown", ::getpid());
}

}  // namespace sidecache::db
