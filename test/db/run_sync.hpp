#pragma once
// Runs one awaitable to completion on a private io_context (tests only).

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace sidecache::test {

template <class T>
T run_sync(boost::asio::awaitable<T> a) {
    boost::asio::io_context ioc;
    auto f = boost::asio::co_spawn(ioc, std::move(a), boost::asio::use_future);
    ioc.run();
    return f.get();
}

}  // namespace sidecache::test
