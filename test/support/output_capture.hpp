#pragma once
// Copies of the test run's output, for scripts/test's secret check: with
// SIDECACHE_TEST_OUTPUT_DIR set, each process's stdout and stderr, and the
// output of the sidecache processes the tests start, are appended to files
// in that directory as well as going where they went before.

#include <string>
#include <string_view>
#include <thread>

namespace sidecache::test {

// The directory, or "" when the copies are not wanted.
std::string output_dir();

// Appends `text` to a new file of `output_dir()` named after `name`, if set.
void keep_output(std::string_view name, std::string_view text);

// While it lives, this process's stdout and stderr (file descriptors 1 and 2)
// are pipes read by a thread that writes what it reads both to the original
// descriptors and to a file of output_dir(). Does nothing without one.
class output_capture {
public:
    explicit output_capture(std::string_view name);
    ~output_capture();  // puts 1 and 2 back, copies what is left
    output_capture(const output_capture&) = delete;
    output_capture& operator=(const output_capture&) = delete;

private:
    void copy();

    int file_ = -1;
    int original_[2] = {-1, -1};  // the old 1 and 2
    int read_[2] = {-1, -1};      // the read ends of the pipes now at 1 and 2
    std::thread copier_;
};

}  // namespace sidecache::test
