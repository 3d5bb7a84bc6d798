#include "support/output_capture.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <iostream>
#include <poll.h>
#include <unistd.h>

namespace sidecache::test {

namespace {

// Set by the destructor: copy what is already in the pipes, then stop.
std::atomic<bool> stopping{false};

void write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const auto n = ::write(fd, data, size);
        if (n <= 0) return;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

int open_output_file(std::string_view name) {
    const auto dir = output_dir();
    if (dir.empty()) return -1;
    const auto path = dir + "/" + std::string(name) + "-" + std::to_string(::getpid()) + ".log";
    return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

}  // namespace

std::string output_dir() {
    const char* dir = std::getenv("SIDECACHE_TEST_OUTPUT_DIR");
    return dir ? dir : "";
}

void keep_output(std::string_view name, std::string_view text) {
    const int fd = open_output_file(name);
    if (fd < 0) return;
    write_all(fd, text.data(), text.size());
    ::close(fd);
}

output_capture::output_capture(std::string_view name) {
    file_ = open_output_file(name);
    if (file_ < 0) return;
    for (int i = 0; i < 2; ++i) {
        const int target = i + 1;  // stdout, stderr
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) return;
        original_[i] = ::fcntl(target, F_DUPFD_CLOEXEC, 3);
        ::dup2(p[1], target);  // not close-on-exec: children inherit it as before
        ::close(p[1]);
        read_[i] = p[0];
    }
    copier_ = std::thread([this] { copy(); });
}

output_capture::~output_capture() {
    if (!copier_.joinable()) return;
    std::cout.flush();
    std::cerr.flush();
    std::fflush(stdout);
    std::fflush(stderr);
    // Our write ends go: once no child holds one, the pipes end.
    for (int i = 0; i < 2; ++i) ::dup2(original_[i], i + 1);
    stopping = true;
    copier_.join();
    for (int fd : {read_[0], read_[1], original_[0], original_[1], file_}) ::close(fd);
}

void output_capture::copy() {
    pollfd fds[2] = {{read_[0], POLLIN, 0}, {read_[1], POLLIN, 0}};
    char buf[8192];
    std::chrono::steady_clock::time_point stop_by{};
    for (int open = 2; open > 0;) {
        const int ready = ::poll(fds, 2, 100);
        if (ready <= 0) {
            // Nothing to copy: done once asked to stop (a child that kept an
            // end open is not waited for beyond two seconds).
            if (stopping) break;
            continue;
        }
        if (stopping && stop_by == std::chrono::steady_clock::time_point{})
            stop_by = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        if (stop_by != std::chrono::steady_clock::time_point{} && std::chrono::steady_clock::now() > stop_by)
            break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            const auto n = ::read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                fds[i].fd = -1;  // poll ignores it from now on
                --open;
                continue;
            }
            write_all(original_[i], buf, static_cast<std::size_t>(n));
            write_all(file_, buf, static_cast<std::size_t>(n));
        }
    }
}

}  // namespace sidecache::test
