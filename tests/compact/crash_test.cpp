// SPDX-License-Identifier: Apache-2.0
// The crash harness (crash_harness.h) on dynamic VHDs and VHDXs (the same cases for both) and on a
// differencing child of each format: every write, log write, header update, block copy, flush and the
// shrink of a compaction.
#include <gtest/gtest.h>

#include "crash_harness.h"

namespace vhdkit::testing {
namespace {

class CompactCrash : public ::testing::TestWithParam<disk::Format> {
 protected:
  std::string name(const std::string& what) const { return fmt_name() + " " + what; }
  std::string file(const std::string& stem) const { return stem + (vhdx() ? ".vhdx" : ".vhd"); }
  std::string fmt_name() const { return std::string(disk::to_string(GetParam())); }
  bool vhdx() const { return GetParam() == disk::Format::Vhdx; }

  TempDir dir_;
};

TEST_P(CompactCrash, InterleavedZeroAndDataBlocks) {
  crash_matrix(name("dynamic, interleaved"),
               crash_setup_of(make_dynamic(dir_, file("a"), "ZDZDDZPZDZD", GetParam(), 2 * kMiB)));
}

TEST_P(CompactCrash, LastBlockMustMove) {
  crash_matrix(name("dynamic, last block moves"),
               crash_setup_of(make_dynamic(dir_, file("a"), "ZZDDZD", GetParam(), 2 * kMiB)));
}

// VHDX: two zero blocks are ZERO with their space still named (as Hyper-V leaves trimmed blocks).
TEST_P(CompactCrash, BlocksAllocatedOutOfOrder) {
  std::string img = make_shuffled(dir_, file("a"), "DZZDZDDZ", {7, 3, 0, 5, 1, 6, 2, 4}, GetParam());
  if (vhdx()) mark_zero_keeping_space(img, {1, 4});
  crash_matrix(name("dynamic, shuffled"), crash_setup_of(img));
}

INSTANTIATE_TEST_SUITE_P(Formats, CompactCrash, ::testing::Values(disk::Format::Vhd, disk::Format::Vhdx),
                         [](const auto& test) { return std::string(disk::to_string(test.param)); });

TEST(CompactCrashDifferencing, VhdChild) {
  TempDir dir;
  DifferencingPair pair = make_differencing_pair(dir);
  CrashSetup setup{
      {{pair.parent, read_file(pair.parent)}, {pair.child, read_file(pair.child)}}, pair.child, QemuReads::FileOnly};
  crash_matrix("vhd differencing", setup);
}

// PARTIALLY_PRESENT blocks, releases to NOT_PRESENT and ZERO, bitmap bits cleared, the sector bitmap moved.
TEST(CompactCrashDifferencing, VhdxChild) {
  TempDir dir;
  VhdxDifferencingPair pair = make_vhdx_differencing_pair(dir);
  CrashSetup setup{
      {{pair.parent, read_file(pair.parent)}, {pair.child, read_file(pair.child)}}, pair.child, QemuReads::No};
  crash_matrix("vhdx differencing", setup);
}

}  // namespace
}  // namespace vhdkit::testing
