#pragma once
// Pure policy for the db module: no I/O, time injected.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sidecache::db {

// The wait before the next reconnection attempt after `failures` consecutive
// failed ones (1, 2, ...): 100 ms doubling, capped at `max`.
std::chrono::milliseconds reconnect_backoff(unsigned failures, std::chrono::milliseconds max);

// When the views should next be refreshed, after one at `now`: `interval`
// later, or just after the next UTC midnight if that comes first (so closed
// days move into the views as the date rolls over). interval 0: only at
// midnight.
std::chrono::system_clock::time_point next_refresh_at(std::chrono::system_clock::time_point now,
                                                      std::chrono::milliseconds interval);

// Why the views were (or would be) refreshed; logged in sidecache.refresh_log.
enum class refresh_reason {
    none,       // nothing changed: the refresher skips
    first,      // no refresh was ever logged
    day,        // the UTC day moved past the views' boundary
    marks,      // marked users (late_changes) reached database.refresh_marked_users
    requested,  // db::pool::request_refresh()
    command,    // `sidecache refresh`
};
std::string_view to_string(refresh_reason r) noexcept;

// What the refresher leader reads from the database (sidecache.refresh_facts()).
struct refresh_facts {
    std::uint64_t logged = 0;        // refreshes in sidecache.refresh_log
    bool day_moved = false;          // the views' boundary is before today's UTC midnight
    std::uint64_t marked_users = 0;  // distinct users in sidecache.late_changes
};

// sidecache.refresh_facts()'s line "<logged> <0|1> <marked>"; nullopt when it
// is anything else.
std::optional<refresh_facts> parse_refresh_facts(std::string_view text);

// Whether a refresh would change anything, and why: first when none was ever
// logged, then day, then marks (marked_users >= marked_threshold); else none.
refresh_reason decide_refresh(const refresh_facts& facts, std::uint64_t marked_threshold) noexcept;

// What one notification on database.notify_channel asks for
// (db/migrations/005_notify.sql writes them; docs/freshness.md).
struct change {
    enum class kind {
        user,   // one user's answers changed: id is the lower-case uuid
        agent,  // one agent changed (its configuration too): id is the lower-case uuid
        all,    // every answer may have changed
    };
    enum class cause {
        notified,   // the payload said so
        garbled,    // a payload we cannot read: it said something changed, not what
        connected,  // the listener (re)connected: notifications may have been missed
    };
    kind what = kind::all;
    cause why = cause::notified;
    std::string id;  // the user's or the agent's, per `what`
};

// Longest payload read; PostgreSQL allows 8000 bytes, ours are at most 42.
inline constexpr std::size_t max_notification_payload = 128;

// "user:<uuid>" (any case) -> user; "agent:<uuid>" -> agent; "all" -> all;
// anything else (another
// kind, a non-uuid id, whitespace, longer than max_notification_payload) ->
// all with cause garbled: a message on our channel that we cannot read most
// likely comes from a newer trigger, and a wrong figure is worse than a miss.
change parse_notification(std::string_view payload);

// A listener's heartbeat: "heartbeat:<token>:<seq>", NOTIFYed on its own
// channel by its own connection (db/listener.hpp). Every replica listens on
// the channel, so each hears the others' heartbeats too: `token` (random
// per listener) tells its own apart. Never a change, never garbled.
enum class heartbeat_of {
    none,   // not a heartbeat: a change to parse
    ours,   // the listener with `token` sent it
    other,  // another listener's (another replica): ignored
};
std::string heartbeat_payload(std::string_view token, std::uint64_t seq);
heartbeat_of classify_heartbeat(std::string_view payload, std::string_view token);
// A heartbeat's token (a view into the payload) and sequence number;
// nullopt: not a heartbeat, or garbled.
struct heartbeat {
    std::string_view token;
    std::uint64_t seq = 0;
};
std::optional<heartbeat> parse_heartbeat(std::string_view payload);

// The channel is proven by the listener's last own heartbeat received at
// `proven_at`; past two intervals of silence it is overdue: no entry may be
// served as fresh. interval 0: heartbeats off, never overdue.
bool heartbeat_overdue(std::chrono::steady_clock::time_point proven_at,
                       std::chrono::steady_clock::time_point now, std::chrono::milliseconds interval);

// A uuid in its canonical 8-4-4-4-12 hex form, any case.
bool is_canonical_uuid(std::string_view text);

}  // namespace sidecache::db
