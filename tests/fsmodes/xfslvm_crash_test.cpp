// SPDX-License-Identifier: Apache-2.0
// The crash harness (tests/compact/crash_harness.h) in Full mode on an XFS inside LVM2 (a bare PV, an XFS
// LV with deleted files, a removed LV's extents holding old data), as VHD and VHDX: after a power cut at
// every operation, in every representative state, the image opens, checks clean, reads the same on every
// range the file systems use, and a rerun finishes.
#include <gtest/gtest.h>

#include "crash_harness.h"
#include "xfs_lvm_guest.h"

namespace vhdkit::testing {
namespace {

class XfsLvmCrash : public ::testing::TestWithParam<std::string> {};

TEST_P(XfsLvmCrash, FullOnXfsInLvm) {
  for (const char* tool : {"mkfs.xfs", "pvcreate", "losetup", "qemu-img"})
    if (run("command -v " + std::string(tool) + " >/dev/null").status != 0) GTEST_FAIL() << tool << " is missing";
  const std::string& format = GetParam();
  TempDir dir;
  GuestFiles files = make_guest_files(dir, 29);
  const std::string raw = dir.file("crash.raw");
  make_xfs_in_lvm(dir, raw, files);
  vhdkit::fs::UsageMap m = map_raw(raw);
  ASSERT_EQ(m.volumes.size(), 1u);
  ASSERT_EQ(m.volumes[0].state, vhdkit::fs::Volume::State::Read) << m.volumes[0].reason;
  ASSERT_LT(m.volumes[0].used_bytes, 12 * kMiB);
  std::string img = convert(raw, dir.file("crash." + format), format);
  CrashSetup setup = crash_setup_of(img);
  for (const auto& r : m.used) setup.used.emplace_back(r.offset, r.length);
  crash_matrix("full, xfs in lvm, " + format, setup);
}

INSTANTIATE_TEST_SUITE_P(Formats, XfsLvmCrash, ::testing::Values("vhd", "vhdx"),
                         [](const auto& test) { return test.param; });

}  // namespace
}  // namespace vhdkit::testing
