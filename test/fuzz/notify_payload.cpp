// Fuzz target: what db/listener.cpp reads from PostgreSQL's channel: the
// NOTIFY payload (a change or a heartbeat) and the refresh facts line.
//
// Checks beyond the sanitizers: a payload read as a user's or an agent's
// change names a lower-case canonical uuid; one read as a change of all is
// "all" or garbled; a heartbeat of ours round-trips.
#include "db/policy.hpp"

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

using namespace sidecache;

namespace {

void fail(const char* what) {
    std::fprintf(stderr, "notify_payload: %s\n", what);
    std::abort();
}

bool lower_case(std::string_view s) {
    for (unsigned char c : s)
        if (std::isupper(c)) return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view payload(reinterpret_cast<const char*>(data), size);
    constexpr std::string_view token = "7f3a9c01";

    switch (db::classify_heartbeat(payload, token)) {
    case db::heartbeat_of::ours:
        if (!payload.starts_with("heartbeat:")) fail("ours without the heartbeat prefix");
        break;
    case db::heartbeat_of::other:
    case db::heartbeat_of::none:
        break;
    }

    const auto c = db::parse_notification(payload);
    switch (c.what) {
    case db::change::kind::user:
    case db::change::kind::agent:
        if (c.why != db::change::cause::notified) fail("a user or agent change not notified");
        if (!db::is_canonical_uuid(c.id) || !lower_case(c.id)) fail("an id that is not a lower-case uuid");
        break;
    case db::change::kind::all:
        if (c.why == db::change::cause::notified && payload != "all") fail("all from another payload");
        break;
    }

    if (auto facts = db::parse_refresh_facts(payload)) (void)db::decide_refresh(*facts, 100);

    const auto seq = size;
    if (db::classify_heartbeat(db::heartbeat_payload(token, seq), token) != db::heartbeat_of::ours)
        fail("our own heartbeat is not ours");
    return 0;
}
