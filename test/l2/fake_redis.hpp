#pragma once
// An in-memory stand-in for Redis, enough for l2::second_level_cache: MGET,
// SET (NX, PX recorded but never expiring: the fill lock), and the three EVAL scripts told apart by their
// number of keys (2: set the missing generations, 1: bump one, 3: the conditional store), with what each does
// in l2/second_level.cpp. Completes at once, on the caller's executor. Tests make it fail (fail_with), refuse
// (up = false), or change its data between two commands (before_command).

#include "l2/second_level.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sidecache::test {

struct fake_redis final : l2::redis_commands {
    std::map<std::string, std::string> data;
    std::map<std::string, long long> px;                             // the last PX given per key
    std::vector<std::vector<std::string>> commands;                  // every command called, in order
    std::optional<boost::system::error_code> fail_with;              // commands fail so while set: all, or
    std::function<bool(const std::vector<std::string>&)> fail_only;  // those it says
    std::optional<std::string> error_reply;  // every command answers "-<this>" so while set
    bool up = true;
    std::function<void(const std::vector<std::string>&)> before_command;
    long long clock = 1'764'000'000'000'000;  // TIME in microseconds, moved by each use

    bool available() const override { return up; }

    boost::asio::awaitable<boost::system::result<l2::reply>> command(std::vector<std::string> args) override {
        commands.push_back(args);
        if (before_command) before_command(args);
        if (fail_with && (!fail_only || fail_only(args))) co_return *fail_with;
        if (error_reply) {
            l2::reply r;
            r.type = l2::reply::kind::error;
            r.str = *error_reply;
            co_return r;
        }
        co_return run(args);
    }

    static l2::reply string(std::string s) {
        l2::reply r;
        r.type = l2::reply::kind::string;
        r.str = std::move(s);
        return r;
    }
    static l2::reply integer(long long n) {
        l2::reply r;
        r.type = l2::reply::kind::integer;
        r.integer = n;
        return r;
    }
    l2::reply get(const std::string& key) const {
        auto it = data.find(key);
        return it == data.end() ? l2::reply{} : string(it->second);
    }
    std::string fresh() { return std::to_string(++clock); }

    l2::reply run(const std::vector<std::string>& a) {
        l2::reply out;
        if (a[0] == "MGET") {
            out.type = l2::reply::kind::array;
            for (std::size_t i = 1; i < a.size(); ++i) out.elements.push_back(get(a[i]));
            return out;
        }
        if (a[0] == "SET") {  // SET key value [NX] [PX ms]: the fill lock (no expiry here)
            const bool nx = std::find(a.begin(), a.end(), "NX") != a.end();
            if (nx && data.contains(a[1])) return out;  // nil: not set
            data[a[1]] = a[2];
            if (auto at = std::find(a.begin(), a.end(), "PX"); at != a.end() && at + 1 != a.end())
                px[a[1]] = std::stoll(*(at + 1));
            out.type = l2::reply::kind::status;
            out.str = "OK";
            return out;
        }
        if (a[0] != "EVAL") {
            out.type = l2::reply::kind::error;
            out.str = "ERR unknown command";
            return out;
        }
        if (a[2] == "2") {  // the missing generations set
            out.type = l2::reply::kind::array;
            for (std::size_t i = 3; i < 5; ++i) {
                if (!data.contains(a[i])) data[a[i]] = fresh();
                out.elements.push_back(string(data[a[i]]));
            }
            return out;
        }
        if (a[2] == "1") {  // a generation bumped
            auto it = data.find(a[3]);
            if (it == data.end()) {
                data[a[3]] = fresh();
                return integer(1);
            }
            it->second = std::to_string(std::stoll(it->second) + 1);
            return integer(std::stoll(it->second));
        }
        // The conditional store: KEYS value, user gen, global gen; ARGV value, gens, PX.
        if (get(a[4]).str != a[7] || !data.contains(a[4]) || get(a[5]).str != a[8] || !data.contains(a[5]))
            return integer(0);
        data[a[3]] = a[6];
        px[a[3]] = std::stoll(a[9]);
        return integer(1);
    }

    std::size_t count(std::string_view name) const {
        std::size_t n = 0;
        for (const auto& c : commands) n += c[0] == name;
        return n;
    }
};

}  // namespace sidecache::test
