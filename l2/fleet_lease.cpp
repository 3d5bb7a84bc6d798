#include "l2/fleet_lease.hpp"

#include "log/logger.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <charconv>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sidecache::l2 {

namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
// The leases read before the first LISTEN: a few SCAN pages and one MGET,
// each within op_timeout. Past this the start reads no lease, and bumps.
constexpr auto read_bound = 250ms;
// After a heartbeat of a replica with a lease, its lease is read this often
// until it proves the start or the hold ends: that replica writes it when
// it hears the same heartbeat, later on a loaded machine.
constexpr auto lease_check_gap = 50ms;

// "<session>:<seq>".
struct lease {
    std::string session;
    std::uint64_t seq = 0;
};

std::optional<lease> parse_lease(std::string_view v) {
    const auto colon = v.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    lease l{std::string(v.substr(0, colon))};
    const auto digits = v.substr(colon + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), l.seq);
    if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
    return l;
}

// The prefix as a SCAN MATCH pattern that matches it literally.
std::string glob_literal(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

}  // namespace

struct fleet_lease::state {
    state(const conf::l2_config& c, std::chrono::milliseconds i, net::any_io_executor bg, redis_commands& r,
          second_level_cache& l)
        : config(c), interval(i), background(std::move(bg)), commands(r), l2(l), bound(background) {}

    const conf::l2_config& config;
    const std::chrono::milliseconds interval;
    net::any_io_executor background;
    redis_commands& commands;
    second_level_cache& l2;
    std::atomic<bool> stopping{false};

    // db thread: this process's LISTEN number (a lease's session), and
    // whether the next flush follows the first LISTEN and leases were read.
    std::uint64_t session = 0;
    bool first_listen = false;
    std::size_t leases_before = 0;

    // background: the sessions of the leases read before the first LISTEN
    // (token -> session), while the start's bump is held the first
    // heartbeat heard of each, and the bound of the hold.
    std::map<std::string, std::string, std::less<>> before;
    std::map<std::string, std::uint64_t, std::less<>> heard;
    bool holding = false;
    net::steady_timer bound;

    std::string lease_key(std::string_view token) const {
        return config.key_prefix + "lease:" + std::string(token);
    }

    net::awaitable<std::vector<std::string>> scan_leases();
    net::awaitable<std::size_t> read_leases();
    void begin_hold();
    void conclude(bool proven, std::string_view token);
    void renew(std::string token, std::uint64_t listen_session, std::uint64_t seq);
    void consider(std::string token, std::uint64_t seq);
    net::awaitable<void> check(std::string token);
};

// Every lease key; none when Redis does not answer (the start then bumps).
net::awaitable<std::vector<std::string>> fleet_lease::state::scan_leases() {
    std::vector<std::string> keys;
    std::string cursor = "0";
    const auto pattern = glob_literal(config.key_prefix + "lease:") + "*";
    do {
        std::vector<std::string> args{"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
        auto r = co_await l2.call(commands, std::move(args));
        if (!r || r->type != reply::kind::array || r->elements.size() != 2)
            co_return std::vector<std::string>{};
        cursor = r->elements[0].str;
        for (auto& k : r->elements[1].elements) keys.push_back(std::move(k.str));
    } while (cursor != "0");
    co_return keys;
}

// The leases into `before`; how many.
net::awaitable<std::size_t> fleet_lease::state::read_leases() {
    auto keys = co_await scan_leases();
    if (keys.empty()) co_return 0;
    std::vector<std::string> args{"MGET"};
    args.insert(args.end(), keys.begin(), keys.end());
    auto r = co_await l2.call(commands, std::move(args));
    if (!r || r->type != reply::kind::array || r->elements.size() != keys.size()) co_return 0;
    const auto prefix_size = lease_key("").size();
    before.clear();
    for (std::size_t i = 0; i < keys.size(); ++i)
        if (auto l = parse_lease(r->elements[i].str))
            before[keys[i].substr(prefix_size)] = std::move(l->session);
    co_return before.size();
}

void fleet_lease::state::begin_hold() {
    holding = true;
    heard.clear();
    bound.expires_after(2 * interval);
    bound.async_wait([this](boost::system::error_code ec) {
        if (!ec && holding) conclude(false, {});
    });
}

void fleet_lease::state::conclude(bool proven, std::string_view token) {
    holding = false;
    bound.cancel();
    l2.release_held(!proven);
    if (proven)
        log::info("l2", "start: a replica listened across this one's first LISTEN, gen:all not bumped",
                  {{"proof", token}});
    else
        log::info("l2",
                  "start: no replica proved it listened across this one's first LISTEN, gen:all bumped");
}

// Our own heartbeat back: every change heard before it was delivered; if
// every invalidation is made in Redis, say so.
void fleet_lease::state::renew(std::string token, std::uint64_t listen_session, std::uint64_t seq) {
    if (stopping || l2.pending() != 0) return;
    auto write = [](state& s, std::string key, std::string value) -> net::awaitable<void> {
        std::vector<std::string> args{"SET", std::move(key), std::move(value), "PX",
                                      std::to_string((3 * s.interval).count())};
        co_await s.l2.call(s.commands, std::move(args));
    };
    net::co_spawn(background,
                  write(*this, lease_key(token), std::to_string(listen_session) + ":" + std::to_string(seq)),
                  [](std::exception_ptr) {});
}

// Another replica's heartbeat, heard after our LISTEN.
void fleet_lease::state::consider(std::string token, std::uint64_t seq) {
    if (!holding || !before.contains(token)) return;
    // The first heard: the later ones of the same session are covered by it.
    if (!heard.try_emplace(token, seq).second) return;
    net::co_spawn(background, check(std::move(token)), [](std::exception_ptr) {});
}

// Whether `token`'s lease, of the session it had before our LISTEN, now
// covers the first heartbeat of it that we heard.
net::awaitable<void> fleet_lease::state::check(std::string token) {
    net::steady_timer gap(background);
    for (bool first = true; holding && !stopping; first = false) {
        if (!first) {
            gap.expires_after(lease_check_gap);
            co_await gap.async_wait(use_tuple);
            if (!holding || stopping) co_return;
        }
        std::vector<std::string> args{"GET", lease_key(token)};
        auto r = co_await l2.call(commands, std::move(args));
        if (!holding || stopping) co_return;
        if (!r || r->type != reply::kind::string) continue;
        auto l = parse_lease(r->str);
        if (l && l->session == before[token] && l->seq >= heard[token]) {
            conclude(true, token);
            co_return;
        }
    }
}

fleet_lease::fleet_lease(const conf::l2_config& config, std::chrono::milliseconds heartbeat_interval,
                         net::any_io_executor background, redis_commands& commands, second_level_cache& l2)
    : state_(std::make_shared<state>(config, heartbeat_interval, std::move(background), commands, l2)) {}

fleet_lease::~fleet_lease() = default;

net::awaitable<void> fleet_lease::before_listen(bool first) {
    auto& s = *state_;
    ++s.session;
    s.first_listen = first;
    s.leases_before = 0;
    if (!first || s.stopping) co_return;
    // The leases are read on the Redis client's thread; this one waits for
    // them on a timer of its own, so that a Redis (or a stopped io thread)
    // that never answers delays the LISTEN by read_bound at most.
    struct wait {
        explicit wait(net::any_io_executor ex) : timer(std::move(ex)) {}
        net::steady_timer timer;
        bool done = false;
        std::size_t found = 0;
    };
    auto ex = co_await net::this_coro::executor;
    auto w = std::make_shared<wait>(ex);
    w->timer.expires_after(read_bound);
    net::co_spawn(s.background, s.read_leases(), [w, ex](std::exception_ptr, std::size_t found) {
        net::post(ex, [w, found] {
            w->done = true;
            w->found = found;
            w->timer.cancel();
        });
    });
    co_await w->timer.async_wait(use_tuple);
    if (w->done) s.leases_before = w->found;
}

void fleet_lease::heartbeat(std::string_view token, std::uint64_t seq, bool ours) {
    auto& s = *state_;
    if (s.stopping) return;
    if (ours)
        net::post(s.background, [st = state_, t = std::string(token), session = s.session, seq]() mutable {
            st->renew(std::move(t), session, seq);
        });
    else
        net::post(s.background,
                  [st = state_, t = std::string(token), seq]() mutable { st->consider(std::move(t), seq); });
}

bool fleet_lease::hold_start_flush() {
    auto& s = *state_;
    const bool hold = s.first_listen && s.leases_before > 0 && !s.stopping;
    s.first_listen = false;
    if (!hold) return false;
    s.l2.invalidate_held();
    net::post(s.background, [st = state_] { st->begin_hold(); });
    return true;
}

void fleet_lease::stop() {
    state_->stopping = true;
    net::post(state_->background, [st = state_] {
        st->holding = false;
        st->bound.cancel();
    });
}

}  // namespace sidecache::l2
