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

}  // namespace sidecache::proxy
