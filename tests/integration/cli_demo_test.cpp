// SPDX-License-Identifier: Apache-2.0
// `make demo` keeps working: scripts/demo.sh runs to the end, compacts its dirty disks, and the referees it
// shows agree (qemu-img compare and check, e2fsck, debugfs reading a file back).
#include <gtest/gtest.h>

#include "cli_util.h"

namespace vhdkit::testing {
namespace {

TEST(Demo, RunsToTheEndAndTheRefereesAgree) {
  RunResult r = run(q(std::string(VHDKIT_SOURCE_DIR) + "/scripts/demo.sh") + " " + q(vhdkit_bin()));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  for (const char* expected :
       {"ext4.vhdx was compacted successfully: 1.01 GiB -> ", "compaction would release ",
        "ext4.vhd was compacted successfully: 1 GiB -> ", "after.raw: 31/65536 files", "demo.vhd: no problems found",
        "Images are identical.", "No errors were found on the image.", "Content mismatch at offset 1048576!",
        "BAT entry 0 points past the end of the file"})
    EXPECT_NE(r.out.find(expected), std::string::npos) << "demo output lacks: " << expected << "\n" << r.out;
}

}  // namespace
}  // namespace vhdkit::testing
