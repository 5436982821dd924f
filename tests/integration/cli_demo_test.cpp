// `make demo` keeps working: scripts/demo.sh runs to the end and the referees it shows agree.
#include <gtest/gtest.h>

#include "cli_util.h"

namespace vhdkit::testing {
namespace {

TEST(Demo, RunsToTheEndAndTheRefereesAgree) {
  RunResult r = run(q(std::string(VHDKIT_SOURCE_DIR) + "/scripts/demo.sh") + " " + q(vhdkit_bin()));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  for (const char* expected : {"demo.vhd: no problems found", "Images are identical.",
                               "No errors were found on the image.", "Content mismatch at offset 1048576!",
                               "BAT entry 0 points past the end of the file"})
    EXPECT_NE(r.out.find(expected), std::string::npos) << "demo output lacks: " << expected << "\n" << r.out;
}

}  // namespace
}  // namespace vhdkit::testing
