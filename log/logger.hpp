#pragma once
// The process's log: one JSON object per line on stderr,
//   {"time":"2026-12-04T15:20:01.123Z","level":"info","component":"proxy","message":"...",<fields>}
// written with one write(2) per line, so lines from different threads never
// interleave. Lines below the configured level (log.level) are dropped.

#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sidecache::log {

enum class level { debug, info, warn, error };

std::optional<level> parse_level(std::string_view text);  // "debug", "info", "warn", "error"
std::string_view to_string(level l);

// Where lines go and which are kept. The process has one (global()); a
// test makes its own to read what it writes.
class logger {
public:
    explicit logger(int fd, level min = level::info) : fd_(fd), min_(min) {}

    void set_level(level l) { min_.store(l, std::memory_order_relaxed); }
    bool enabled(level l) const { return l >= min_.load(std::memory_order_relaxed); }

    // Writes one line if `l` is enabled. Fields keep their order, after the
    // four fixed keys. Never throws.
    void write(level l, std::string_view component, std::string_view message,
               const boost::json::object& fields = {}) const;

private:
    int fd_;
    std::atomic<level> min_;
};

// The process's logger: stderr, level info until set_level().
logger& global();

// The line logger::write() writes (without the newline), for `now`.
std::string format_line(std::chrono::system_clock::time_point now, level l, std::string_view component,
                        std::string_view message, const boost::json::object& fields);

// RFC 3339, UTC, milliseconds: "2026-12-04T15:20:01.123Z".
std::string format_time(std::chrono::system_clock::time_point t);

// Writes `text` to `fd` with write(2): one call unless the kernel takes part of it.
void write_all(int fd, std::string_view text);

inline void debug(std::string_view component, std::string_view message, const boost::json::object& fields = {}) {
    global().write(level::debug, component, message, fields);
}
inline void info(std::string_view component, std::string_view message, const boost::json::object& fields = {}) {
    global().write(level::info, component, message, fields);
}
inline void warn(std::string_view component, std::string_view message, const boost::json::object& fields = {}) {
    global().write(level::warn, component, message, fields);
}
inline void error(std::string_view component, std::string_view message, const boost::json::object& fields = {}) {
    global().write(level::error, component, message, fields);
}

}  // namespace sidecache::log
