#include "db/policy.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

namespace sidecache::db {

std::chrono::milliseconds reconnect_backoff(unsigned failures, std::chrono::milliseconds max) {
    std::chrono::milliseconds wait{100};
    for (unsigned i = 1; i < failures && wait < max; ++i) wait *= 2;
    return std::min(wait, max);
}

std::chrono::system_clock::time_point next_refresh_at(std::chrono::system_clock::time_point now,
                                                      std::chrono::milliseconds interval) {
    using namespace std::chrono;
    // system_clock is UTC (Unix time): floor to days is the UTC midnight.
    system_clock::time_point midnight = floor<days>(now) + days(1) + seconds(1);
    if (interval.count() <= 0) return midnight;
    return std::min<system_clock::time_point>(now + interval, midnight);
}

std::string heartbeat_payload(std::string_view token, std::uint64_t seq) {
    return "heartbeat:" + std::string(token) + ":" + std::to_string(seq);
}

namespace {
constexpr std::string_view heartbeat_prefix = "heartbeat:";
}  // namespace

// Anything under the prefix is a heartbeat (never a change); ours only if it
// reads back whole with our token.
heartbeat_of classify_heartbeat(std::string_view payload, std::string_view token) {
    if (!payload.starts_with(heartbeat_prefix)) return heartbeat_of::none;
    const auto h = parse_heartbeat(payload);
    return h && h->token == token ? heartbeat_of::ours : heartbeat_of::other;
}

std::optional<heartbeat> parse_heartbeat(std::string_view payload) {
    if (!payload.starts_with(heartbeat_prefix)) return std::nullopt;
    auto rest = payload.substr(heartbeat_prefix.size());
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    heartbeat h{rest.substr(0, colon)};
    const auto digits = rest.substr(colon + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), h.seq);
    if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
    return h;
}

bool heartbeat_overdue(std::chrono::steady_clock::time_point proven_at,
                       std::chrono::steady_clock::time_point now, std::chrono::milliseconds interval) {
    return interval.count() > 0 && now - proven_at > 2 * interval;
}

std::string_view to_string(refresh_reason r) noexcept {
    switch (r) {
        case refresh_reason::none: return "none";
        case refresh_reason::first: return "first";
        case refresh_reason::day: return "day";
        case refresh_reason::marks: return "marks";
        case refresh_reason::requested: return "requested";
        case refresh_reason::command: return "command";
    }
    return "none";
}

std::optional<refresh_facts> parse_refresh_facts(std::string_view text) {
    std::uint64_t fields[3] = {};
    const char* p = text.data();
    const char* end = text.data() + text.size();
    for (int i = 0; i < 3; ++i) {
        if (i > 0) {
            if (p == end || *p != ' ') return std::nullopt;
            ++p;
        }
        auto [next, ec] = std::from_chars(p, end, fields[i]);
        if (ec != std::errc() || next == p) return std::nullopt;
        p = next;
    }
    if (p != end || fields[1] > 1) return std::nullopt;
    return refresh_facts{fields[0], fields[1] == 1, fields[2]};
}

refresh_reason decide_refresh(const refresh_facts& facts, std::uint64_t marked_threshold) noexcept {
    if (facts.logged == 0) return refresh_reason::first;
    if (facts.day_moved) return refresh_reason::day;
    if (facts.marked_users >= marked_threshold) return refresh_reason::marks;
    return refresh_reason::none;
}

bool is_canonical_uuid(std::string_view t) {
    if (t.size() != 36) return false;
    for (std::size_t i = 0; i < t.size(); ++i) {
        const char c = t[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

change parse_notification(std::string_view payload) {
    change c;
    if (payload == "all") return c;
    constexpr std::pair<std::string_view, change::kind> kinds[] = {{"user:", change::kind::user},
                                                                   {"agent:", change::kind::agent}};
    for (auto [prefix, kind] : kinds) {
        if (payload.size() > max_notification_payload || !payload.starts_with(prefix) ||
            !is_canonical_uuid(payload.substr(prefix.size())))
            continue;
        c.what = kind;
        c.id = payload.substr(prefix.size());
        for (auto& ch : c.id)
            if (ch >= 'A' && ch <= 'F') ch = static_cast<char>(ch - 'A' + 'a');
        return c;
    }
    c.why = change::cause::garbled;
    return c;
}

}  // namespace sidecache::db
