#include "cache/fill_backoff.hpp"

#include <algorithm>

namespace sidecache::cache {

std::optional<response_bytes> fill_backoff::holding(std::string_view key, time_point now) const {
    if (size() == 0) return std::nullopt;
    std::lock_guard lock(mutex_);
    auto it = keys_.find(std::string(key));
    if (it == keys_.end() || now >= it->second.retry_at) return std::nullopt;
    return it->second.answer;
}

fill_backoff::duration fill_backoff::failed(std::string_view key, const response_bytes& answer,
                                            time_point now, duration initial, duration max) {
    if (initial.count() <= 0) return duration{0};
    std::lock_guard lock(mutex_);
    auto it = keys_.find(std::string(key));
    if (it == keys_.end()) {
        if (keys_.size() >= max_keys_) prune(now);
        if (keys_.size() >= max_keys_) return duration{0};
        it = keys_.emplace(std::string(key), state{}).first;
        count_.store(keys_.size(), std::memory_order_release);
    }
    auto& s = it->second;
    s.failures = std::min(s.failures + 1, 31u);
    // initial * 2^(failures-1), without overflow, at most max.
    auto wait = initial;
    for (unsigned i = 1; i < s.failures && wait < max; ++i) wait *= 2;
    wait = std::min(wait, std::max(max, initial));
    s.retry_at = now + wait;
    s.answer = answer;
    return wait;
}

void fill_backoff::succeeded(std::string_view key) {
    if (size() == 0) return;
    std::lock_guard lock(mutex_);
    if (keys_.erase(std::string(key)) != 0) count_.store(keys_.size(), std::memory_order_release);
}

void fill_backoff::forget_if(const std::function<bool(std::string_view)>& pred) {
    if (size() == 0) return;
    std::lock_guard lock(mutex_);
    std::erase_if(keys_, [&](const auto& kv) { return pred(kv.first); });
    count_.store(keys_.size(), std::memory_order_release);
}

void fill_backoff::prune(time_point now) {
    // A key past its retry time that nobody asked for again: its next fill
    // would run anyway; forgetting it only resets its doubling.
    std::erase_if(keys_, [&](const auto& kv) { return now >= kv.second.retry_at; });
    count_.store(keys_.size(), std::memory_order_release);
}

}  // namespace sidecache::cache
