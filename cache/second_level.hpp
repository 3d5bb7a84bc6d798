#pragma once
// The seam between the cache and a second level shared by a fleet (Redis:
// l2/second_level.hpp, docs/l2.md). The service calls it only when one is
// set (service::use_second_level), and only inside a fill's single flight:
// a deployment without it makes no call and does no new work on a hit.

#include "cache/filler.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sidecache::cache {

// What a read of the second level found, read before the fill runs.
struct second_level_read {
    // A usable answer of the key: served, and stored in the first level
    // for what remains of its life (expires_at).
    std::optional<fill_result> hit;
    std::chrono::system_clock::time_point computed_at;  // the hit's
    std::chrono::system_clock::time_point expires_at;   // the hit's: fresh until then
    // Whether the fill's answer may be stored, and what the store checks:
    // the generations read with it (docs/l2.md). Opaque to the cache.
    bool may_store = false;
    std::string user_generation, global_generation;
};

class second_level {
public:
    virtual ~second_level() = default;

    // The answer of `key` (of `user_id`), or the ticket a store needs.
    // Never fails: an unavailable second level reads as a miss without a
    // ticket, within its operation timeout. On the caller's executor.
    virtual boost::asio::awaitable<second_level_read> read(std::string_view key,
                                                           std::string_view user_id) = 0;

    // Stores the answer filled after `ticket` was read, fresh until
    // `expires_at` (`remaining` from now), unless an invalidation of its user (or of all) came
    // since the read. Never fails (a refused or failed store is counted).
    virtual boost::asio::awaitable<void> store(std::string key, std::string user_id, second_level_read ticket,
                                               fill_result result,
                                               std::chrono::system_clock::time_point computed_at,
                                               std::chrono::system_clock::time_point expires_at,
                                               std::chrono::milliseconds remaining) = 0;

    // An invalidation of `tag` ("user:<id>"; any other: everything). Before
    // it returns, no read or store of the second level serves or keeps an
    // answer it covers; the copies there are made unusable in the
    // background. Any thread.
    virtual void invalidate(std::string_view tag) = 0;
};

}  // namespace sidecache::cache
