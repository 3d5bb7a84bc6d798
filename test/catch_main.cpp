// The Catch2 main shared by every test binary. When SIDECACHE_TEST_OUTPUT_DIR
// is set (scripts/test sets it), everything this process writes to stdout and
// stderr (the log lines and access log of the sidecache servers the tests run
// in process included) is also copied to a file there, so that scripts/test
// can check every line of the whole run for the test secrets.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/output_capture.hpp"

int main(int argc, char* argv[]) {
    sidecache::test::output_capture capture("catch");
    return Catch::Session().run(argc, argv);
}
