#pragma once
// RESP through hiredis: a command formatted by redisFormatCommandArgv, and a
// reader (redisReader) fed with the bytes read from a socket. The only file
// that includes hiredis is resp.cpp.

#include "l2/client.hpp"

#include <boost/system/result.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

struct redisReader;

namespace sidecache::l2 {

// The RESP bytes of one command (binary-safe arguments).
std::string format_command(const std::vector<std::string>& args);

class resp_reader {
public:
    resp_reader();
    ~resp_reader();
    resp_reader(resp_reader&&) noexcept;
    resp_reader& operator=(resp_reader&&) noexcept;

    // Appends bytes read from the connection; protocol if the reader refuses them.
    boost::system::result<void> feed(const char* data, std::size_t size);
    // The next complete reply, nullopt if more bytes are needed, protocol on
    // garbled input (the connection is then unusable).
    boost::system::result<std::optional<reply>> next();

private:
    struct free_reader {
        void operator()(redisReader* r) const noexcept;
    };
    std::unique_ptr<redisReader, free_reader> reader_;
};

}  // namespace sidecache::l2
