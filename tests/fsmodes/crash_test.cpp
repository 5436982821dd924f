// SPDX-License-Identifier: Apache-2.0
// The crash harness (tests/compact/crash_harness.h) in Full mode on a small ext4 with deleted data, as VHD and
// VHDX: after a power cut at every operation, in every representative state, the image opens, checks clean,
// reads the same on every range the file system uses, and a rerun finishes.
#include <gtest/gtest.h>

#include "crash_harness.h"
#include "guest_disk.h"

namespace vhdkit::testing {
namespace {

class FsModesCrash : public ::testing::TestWithParam<std::string> {};

TEST_P(FsModesCrash, FullOnExt4) {
  for (const char* tool : {"mke2fs", "debugfs", "qemu-img"})
    if (run("command -v " + std::string(tool) + " >/dev/null").status != 0) GTEST_FAIL() << tool << " is missing";
  const std::string& format = GetParam();
  {
    TempDir dir;
    GuestFiles files = make_guest_files(dir, 23);
    // Bare, as WSL2 lays out its ext4.vhdx: 12 MiB, so that the matrix stays small.
    std::string raw = make_ext(dir, "crash", "-t ext4", files, 12);
    std::string img = convert(raw, dir.file("crash." + format), format);
    CrashSetup setup = crash_setup_of(img);
    for (const auto& r : map_raw(raw).used) setup.used.emplace_back(r.offset, r.length);
    ASSERT_FALSE(setup.used.empty());
    crash_matrix("full, ext4, " + format, setup);
  }
}

// Retrim: the holes over unused and zero ranges, cut at every punch and flush; the used ranges read the same in
// every state.
TEST_P(FsModesCrash, RetrimOnExt4) {
  for (const char* tool : {"mke2fs", "debugfs", "qemu-img"})
    if (run("command -v " + std::string(tool) + " >/dev/null").status != 0) GTEST_FAIL() << tool << " is missing";
  const std::string& format = GetParam();
  TempDir dir;
  GuestFiles files = make_guest_files(dir, 29);
  std::string raw = make_ext(dir, "crash", "-t ext4", files, 12);
  std::string img = convert(raw, dir.file("retrim." + format), format);
  CrashSetup setup = crash_setup_of(img);
  setup.mode = compact::Mode::Retrim;
  for (const auto& r : map_raw(raw).used) setup.used.emplace_back(r.offset, r.length);
  ASSERT_FALSE(setup.used.empty());
  crash_matrix("retrim, ext4, " + format, setup);
}

INSTANTIATE_TEST_SUITE_P(Formats, FsModesCrash, ::testing::Values("vhd", "vhdx"),
                         [](const auto& test) { return test.param; });

}  // namespace
}  // namespace vhdkit::testing
