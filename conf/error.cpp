#include "conf/error.hpp"

#include <fmt/format.h>

namespace sidecache::conf {

namespace {

std::string format_error(const std::string& file, int line, int column, const std::string& key_path,
                         const std::string& message) {
    std::string out = file;
    if (line > 0) out += fmt::format(":{}:{}", line, column);
    out += ": ";
    if (!key_path.empty()) out += key_path + ": ";
    out += message;
    return out;
}

}  // namespace

error::error(std::string file, int line, int column, std::string key_path, std::string message)
    : std::runtime_error(format_error(file, line, column, key_path, message)),
      file_(std::move(file)),
      line_(line),
      column_(column),
      key_path_(std::move(key_path)),
      message_(std::move(message)) {}

}  // namespace sidecache::conf
