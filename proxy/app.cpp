#include "proxy/app.hpp"

#include "conf/effective.hpp"
#include "log/logger.hpp"
#include "proxy/application.hpp"
#include "proxy/server.hpp"

#include <fmt/core.h>

#include <exception>

#include <pthread.h>
#include <signal.h>

namespace sidecache::proxy {

int run(const conf::config& cfg) {
    // conf/ has checked the word: parse_level() cannot fail here.
    log::global().set_level(log::parse_level(cfg.log.level).value_or(log::level::info));
    // SIGHUP reloads (server::wait_for_signal). Until its handler is in
    // place, one that comes stays pending instead of killing the process:
    // blocked here, before any thread starts, so every thread inherits it.
    sigset_t hangup;
    ::sigemptyset(&hangup);
    ::sigaddset(&hangup, SIGHUP);
    ::pthread_sigmask(SIG_BLOCK, &hangup, nullptr);
    try {
        for (const auto& w : conf::warnings(cfg)) log::warn("proxy", w);
        application app(cfg);
        app.start();
        auto& s = app.server();
        // Tests and scripts read the ports from this message ("listening on
        // HOST:PORT, admin on HOST:PORT"): keep its words, or change them too.
        std::string listening = fmt::format("listening on {}:{}", cfg.server.listen.host, s.port());
        if (s.admin_port()) listening += fmt::format(", admin on {}:{}", cfg.admin.listen.host, s.admin_port());
        listening += fmt::format(", upstream {}", cfg.upstream.url.text);
        boost::json::object fields{{"host", cfg.server.listen.host}, {"port", s.port()}};
        if (s.admin_port()) fields["admin_port"] = s.admin_port();
        fields["upstream"] = cfg.upstream.url.text;
        fields["access_log"] = cfg.log.access_log;
        log::info("proxy", listening, fields);
        s.wait_for_signal([&app] { app.reload(); });
        const auto drain_timeout = s.settings().current().server.drain_timeout;  // a reload may have changed it
        log::info("proxy", "draining", {{"timeout_ms", drain_timeout.count()}});
        const bool clean = s.drain(drain_timeout);
        if (!clean) log::warn("proxy", "drain timed out, connections cut");
        return 0;
    } catch (const std::exception& e) {
        log::error("proxy", e.what());
        return 1;
    }
}

}  // namespace sidecache::proxy
