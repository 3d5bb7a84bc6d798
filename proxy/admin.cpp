#include "proxy/admin.hpp"

namespace sidecache::proxy {

void admin_registry::add_stats(std::string name, stats_provider provider) {
    std::lock_guard lock(mutex_);
    stats_.emplace_back(std::move(name), std::move(provider));
}

void admin_registry::add_readiness(std::string name, readiness_check check) {
    std::lock_guard lock(mutex_);
    readiness_.emplace_back(std::move(name), std::move(check));
}

void admin_registry::add_degradation(std::string name, readiness_check check) {
    std::lock_guard lock(mutex_);
    degradations_.emplace_back(std::move(name), std::move(check));
}

std::vector<std::string> admin_registry::degradations() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [name, check] : degradations_) {
        if (auto reason = check(); !reason.empty()) out.push_back(name + ": " + reason);
    }
    return out;
}

boost::json::object admin_registry::stats() const {
    std::lock_guard lock(mutex_);
    boost::json::object out;
    for (const auto& [name, provider] : stats_) out[name] = provider();
    return out;
}

std::string admin_registry::not_ready_reason() const {
    std::lock_guard lock(mutex_);
    for (const auto& [name, check] : readiness_) {
        if (auto reason = check(); !reason.empty()) return name + ": " + reason;
    }
    return {};
}

std::vector<admin_registry::check_result> admin_registry::checks() const {
    std::lock_guard lock(mutex_);
    std::vector<check_result> out;
    for (const auto& [name, check] : readiness_) out.push_back({name, check(), false});
    for (const auto& [name, check] : degradations_) out.push_back({name, check(), true});
    return out;
}

void admin_registry::set_purge(purge_handler handler) {
    std::lock_guard lock(mutex_);
    purge_ = std::move(handler);
}

std::optional<std::size_t> admin_registry::purge(const purge_request& request) const {
    purge_handler handler;
    {
        std::lock_guard lock(mutex_);
        handler = purge_;
    }
    // Outside the lock: invalidating a large cache takes a while, and
    // /ready and /stats must not wait for it.
    if (!handler) return std::nullopt;
    return handler(request);
}

void admin_registry::set_reload(reload_handler handler) {
    std::lock_guard lock(mutex_);
    reload_ = std::move(handler);
}

std::optional<reload_outcome> admin_registry::reload() const {
    reload_handler handler;
    {
        std::lock_guard lock(mutex_);
        handler = reload_;
    }
    if (!handler) return std::nullopt;
    return handler();
}

}  // namespace sidecache::proxy
