// SPDX-License-Identifier: Apache-2.0
// VHD-only compaction cases (compact_test.cpp holds those VHD and VHDX share): the Disk2VHD fixture,
// differencing children judged against their parent, and the images compaction refuses.
#include <gtest/gtest.h>

#include "compact_checks.h"

namespace vhdkit::testing {
namespace {

using compact::Report;

TEST(VhdCompact, Disk2VhdZeroFilledFixture) {
  VHDKIT_NEEDS_FIXTURES();
  TempDir dir;
  std::string img = expand_fixture("qemu-iotests/d2v-zerofilled.vhd.bz2", dir);
  Report r = compact_and_referee(img);
  EXPECT_EQ(r.blocks_allocated_before, 126u);
  EXPECT_EQ(r.blocks_released, 126u);
  EXPECT_EQ(r.blocks_moved, 0u);
  EXPECT_LT(file_size(img), 1u << 20);
}

// qemu's vpc driver ignores parents, so our reader (through the parent chain) judges the child's content.
TEST(VhdCompact, DifferencingChildKeepsItsVirtualContent) {
  TempDir dir;
  DifferencingPair pair = make_differencing_pair(dir);
  io::Env& env = io::Env::posix();
  const auto before = virtual_content(env, pair.child);
  const std::string parent_sha = sha256(pair.parent);
  const uint64_t size_before = file_size(pair.child);
  Report predicted = dry_run(pair.child);
  Report done = compact_ok(pair.child);
  EXPECT_EQ(done.blocks_allocated_before, 7u);
  EXPECT_EQ(done.blocks_released, pair.releasable);
  EXPECT_EQ(done.blocks_released, predicted.blocks_released);
  EXPECT_EQ(done.blocks_moved, predicted.blocks_moved);
  EXPECT_EQ(file_size(pair.child), predicted.file_size_after);
  EXPECT_EQ(size_before - file_size(pair.child), pair.releasable * (2 * kMiB + 512));
  EXPECT_NE(done.mode_note.find("differencing"), std::string::npos) << done.mode_note;
  EXPECT_TRUE(virtual_content(env, pair.child) == before) << "the child reads differently";
  EXPECT_EQ(sha256(pair.parent), parent_sha);
  auto problems = our_check(env, pair.child);
  EXPECT_TRUE(problems.empty()) << problems.front();
  run_ok("vhdiinfo " + q(pair.child));
  expect_fully_compacted(pair.child);
}

TEST(VhdCompact, FixedVhdIsNotSupportedAndSaysWhy) {
  TempDir dir;
  std::string img = dir.file("fixed.vhd");
  run_ok("qemu-img create -q -f vpc -o subformat=fixed " + q(img) + " 8M");
  expect_refused(img, ReturnCode::NotSupported, {"fixed VHD", "Retrim"});
}

TEST(VhdCompact, RawImageIsNotSupported) {
  TempDir dir;
  std::string img = dir.file("disk.raw");
  make_raw_pattern(img, "DZ");
  expect_refused(img, ReturnCode::NotSupported, {"raw image"});
}

}  // namespace
}  // namespace vhdkit::testing
