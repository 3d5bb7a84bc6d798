#include "log/logger.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <fmt/core.h>

#include <cerrno>
#include <ctime>
#include <unistd.h>

namespace sidecache::log {

std::optional<level> parse_level(std::string_view text) {
    if (text == "debug") return level::debug;
    if (text == "info") return level::info;
    if (text == "warn") return level::warn;
    if (text == "error") return level::error;
    return std::nullopt;
}

std::string_view to_string(level l) {
    switch (l) {
    case level::debug:
        return "debug";
    case level::info:
        return "info";
    case level::warn:
        return "warn";
    case level::error:
        return "error";
    }
    return "error";
}

std::string format_time(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                       utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ms % 1000);
}

std::string format_line(std::chrono::system_clock::time_point now, level l, std::string_view component,
                        std::string_view message, const boost::json::object& fields) {
    std::string line = "{\"time\":\"" + format_time(now) + "\",\"level\":\"";
    line += to_string(l);
    line += "\",\"component\":";
    line += boost::json::serialize(boost::json::string(component));
    line += ",\"message\":";
    line += boost::json::serialize(boost::json::string(message));
    for (const auto& field : fields) {
        line += ',';
        line += boost::json::serialize(boost::json::string(field.key()));
        line += ':';
        line += boost::json::serialize(field.value());
    }
    line += '}';
    return line;
}

void write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        const auto n = ::write(fd, text.data(), text.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // nowhere to log that logging failed
        text.remove_prefix(static_cast<std::size_t>(n));
    }
}

void logger::write(level l, std::string_view component, std::string_view message,
                   const boost::json::object& fields) const {
    if (!enabled(l)) return;
    try {
        auto line = format_line(std::chrono::system_clock::now(), l, component, message, fields);
        line += '\n';
        write_all(fd_, line);  // one write(2) for the whole line (a short write is retried)
    } catch (...) {
        // Out of memory while logging: the line is lost, the caller goes on.
    }
}

logger& global() {
    static logger instance(STDERR_FILENO);
    return instance;
}

}  // namespace sidecache::log
