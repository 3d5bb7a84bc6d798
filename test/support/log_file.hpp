#pragma once
// A temporary file a logger writes to, its lines read back: what the log
// tests check the JSON lines with.

#include <cstdio>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace sidecache::test {

struct log_file {
    FILE* file = std::tmpfile();
    int fd() const { return ::fileno(file); }

    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        std::string all;
        char buf[4096];
        ::lseek(fd(), 0, SEEK_SET);
        for (ssize_t n; (n = ::read(fd(), buf, sizeof buf)) > 0;) all.append(buf, static_cast<std::size_t>(n));
        std::istringstream in(all);
        for (std::string line; std::getline(in, line);) out.push_back(line);
        return out;
    }
    ~log_file() { std::fclose(file); }
};

}  // namespace sidecache::test
