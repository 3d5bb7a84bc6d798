#pragma once
// The one exception conf/ throws: a configuration the loader refuses, with the
// file, line, column and key path it is about.

#include <stdexcept>
#include <string>

namespace sidecache::conf {

class error : public std::runtime_error {
public:
    // what() is "FILE:LINE:COL: key.path: message". line and column are
    // 1-based; line 0 means no position (e.g. the file cannot be read), so
    // what() is "FILE: message". An empty key_path (a YAML syntax error, the
    // document root) drops that part.
    error(std::string file, int line, int column, std::string key_path, std::string message);

    const std::string& file() const noexcept { return file_; }
    int line() const noexcept { return line_; }
    int column() const noexcept { return column_; }
    const std::string& key_path() const noexcept { return key_path_; }
    const std::string& message() const noexcept { return message_; }

private:
    std::string file_;
    int line_;
    int column_;
    std::string key_path_;
    std::string message_;
};

}  // namespace sidecache::conf
