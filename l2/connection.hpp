#pragma once
// One connection to Redis: a TCP socket and the RESP reader of its replies.
// It serves one command at a time (no pipelining). Its operations have no
// deadline of their own: the client races them against a timer and closes
// the connection when the timer wins (a late reply would desync it).

#include "l2/client.hpp"
#include "l2/resp.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/result.hpp>

#include <array>
#include <string>
#include <vector>

namespace sidecache::l2 {

class connection {
public:
    explicit connection(const boost::asio::any_io_executor& ex);

    bool is_open() const { return socket_.is_open(); }
    // Resolves, connects, then AUTH and SELECT as the options ask.
    boost::asio::awaitable<boost::system::result<void>> open(const client_options& opts);
    // Sends one formatted command and reads its reply.
    boost::asio::awaitable<boost::system::result<reply>> exchange(const std::string& request);
    // Closes the socket (cancelling what runs on it) and forgets partial replies.
    void close();

private:
    boost::asio::awaitable<boost::system::result<reply>> read_reply();
    boost::asio::awaitable<boost::system::result<void>> setup(const std::vector<std::string>& args);

    boost::asio::ip::tcp::socket socket_;
    resp_reader reader_;
    std::array<char, 16 * 1024> buffer_{};
};

}  // namespace sidecache::l2
