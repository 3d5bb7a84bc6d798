#pragma once
// A PostgreSQL server process stopped with SIGSTOP for a test's scope: its
// connection stays open but nothing on it moves, the way a connection dies
// silently (a host gone, a firewall dropping packets). pg_terminate_backend
// is not that: the backend says goodbye and the socket closes. Needs the
// server on this machine and the right to signal it (the tests run as root).
// SIGCONT in the destructor, whatever the test did.

#include <catch2/catch.hpp>
#include <sys/types.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

namespace sidecache::test {

class stopped_backend {
public:
    explicit stopped_backend(int pid) {
        REQUIRE(pid > 0);
        const int rc = ::kill(pid, SIGSTOP);
        const int err = errno;
        INFO("kill(" << pid << ", SIGSTOP): " << (rc == 0 ? "ok" : std::strerror(err))
                     << " (the PostgreSQL server must run on this machine, signalable by this user)");
        REQUIRE(rc == 0);
        pid_ = pid;
    }
    ~stopped_backend() { resume(); }
    stopped_backend(const stopped_backend&) = delete;
    stopped_backend& operator=(const stopped_backend&) = delete;

    // SIGCONT now (once).
    void resume() {
        if (pid_ > 0) ::kill(pid_, SIGCONT);
        pid_ = 0;
    }

private:
    int pid_ = 0;
};

}  // namespace sidecache::test
