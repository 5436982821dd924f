// SPDX-License-Identifier: Apache-2.0
// VHDX-only compaction cases (compact_test.cpp holds those VHD and VHDX share): qemu-made images at every
// block size, 4 KiB sectors, the Windows-made and other-tool fixtures (dirty logs included), differencing
// children with PARTIALLY_PRESENT blocks and a sector bitmap, ZERO blocks that still hold file space, the
// GUID and log rules, fixed disks, malformed files and a 64 TiB disk.
#include <gtest/gtest.h>

#include <algorithm>

#include "compact_checks.h"
#include "image/open_image.h"
#include "vhdx/create.h"
#include "vhdx/vhdx_disk.h"

namespace vhdkit::testing {
namespace {

using compact::Report;
using vhdx::PayloadState;

// The image as vhdx::Image sees it (read-only), for the tests that look at states, bits and GUIDs.
struct Opened {
  std::unique_ptr<disk::VirtualDisk> disk;
  // A file that did not open as a VHDX throws: the test fails saying so instead of crashing.
  vhdx::Image& image() {
    vhdx::Image* image = disk ? vhdx::image_of(*disk) : nullptr;
    if (!image) throw std::runtime_error("the image did not open as a VHDX");
    return *image;
  }
};
Opened open_vhdx(const std::string& path) {
  auto d = image::open_image(io::Env::posix(), path);
  EXPECT_TRUE(d.has_value()) << d.error().what();
  return {d ? std::move(*d) : nullptr};
}

uint64_t count(const std::string& pattern, char kind) { return std::count(pattern.begin(), pattern.end(), kind); }

// qemu-img puts the header section, the log, the BAT and the metadata in the first 4 MiB of a VHDX and its
// first block at 8 MiB: compaction moves blocks into [4 MiB, 8 MiB) too, when they fit.
constexpr uint64_t kQemuStructures = 4 * kMiB;

struct BlockSizeCase {
  uint64_t block;
  const char* pattern;
  uint64_t size_after;  // worked out by hand from qemu's layout (kQemuStructures)
};

class VhdxBlockSizes : public ::testing::TestWithParam<BlockSizeCase> {};

// qemu-img makes them (every block allocated, zero blocks written as zeros); compacted, they pass
// qemu-img check and compare, vhdiinfo opens them, they shrink by exactly what the dry run said, and they
// end no larger than what `qemu-img convert -O vhdx` makes of the same content.
TEST_P(VhdxBlockSizes, QemuMadeImageCompacts) {
  TempDir dir;
  const auto [block, pattern, size_after] = GetParam();
  std::string img = make_dynamic_vhdx(dir, "a.vhdx", pattern, block);
  std::string converted = dir.file("converted.vhdx");
  run_ok("qemu-img convert -O vhdx -o block_size=" + std::to_string(block) + " " + q(img) + " " + q(converted));
  Report r = compact_and_referee(img);
  EXPECT_EQ(r.block_size, block);
  EXPECT_EQ(r.blocks_released, count(pattern, 'Z'));
  EXPECT_EQ(file_size(img), size_after);
  EXPECT_LE(file_size(img), file_size(converted));
}

// Where a block does not fit [4 MiB, 8 MiB) a hole stays below the last block: 8 MiB blocks at 8..40 MiB,
// 'D' 40 -> 4, 'P' 32 -> 24, 'D' at 16 has no hole of 8 MiB below it, so the file ends at 32 MiB.
INSTANTIATE_TEST_SUITE_P(Sizes, VhdxBlockSizes,
                         ::testing::Values(BlockSizeCase{1 * kMiB, "DZDZZDPZDZ", kQemuStructures + 5 * kMiB},
                                           BlockSizeCase{2 * kMiB, "ZDDZPZ", kQemuStructures + 3 * 2 * kMiB},
                                           BlockSizeCase{8 * kMiB, "ZDZPD", 32 * kMiB},
                                           BlockSizeCase{32 * kMiB, "ZDZD", 72 * kMiB},
                                           BlockSizeCase{256 * kMiB, "ZD", kQemuStructures + 256 * kMiB}),
                         [](const auto& test) { return std::to_string(test.param.block >> 20) + "MiB"; });

// qemu-img makes only 512-byte logical sectors: our writer makes the 4 KiB ones, qemu referees them.
TEST(VhdxCompact, FourKiBLogicalSectors) {
  TempDir dir;
  std::string img = dir.file("a.vhdx");
  vhdx::CreateOptions o;
  o.virtual_size = 12 * kMiB;
  o.block_size = kMiB;
  o.logical_sector_size = 4096;
  ASSERT_TRUE(vhdx::create(io::Env::posix(), img, o).has_value());
  {
    disk::OpenOptions rw;
    rw.access = io::Access::ReadWrite;
    auto d = image::open_image(io::Env::posix(), img, rw);
    ASSERT_TRUE(d.has_value()) << d.error().what();
    std::vector<std::byte> zeros(kMiB), data(kMiB, std::byte{0x5a});
    for (uint64_t b = 0; b < 12; ++b) ASSERT_TRUE((*d)->write(b * kMiB, b % 3 == 1 ? data : zeros).has_value());
    ASSERT_TRUE((*d)->flush().has_value());
  }
  Opened before = open_vhdx(img);
  EXPECT_EQ(before.image().metadata().logical_sector_size, 4096u);
  before.disk.reset();
  // qemu 7.2 refuses 4 KiB logical sectors ("not supported"): vhdiinfo and our reader referee.
  Report r = compact_and_referee(img, QemuReads::No);
  EXPECT_EQ(r.blocks_released, 8u);
  EXPECT_EQ(r.bytes_released, 8 * kMiB);
}

struct FixtureCase {
  const char* fixture;
  uint64_t released;  // blocks the compaction releases
  uint64_t size_after;
  // A 10 GiB disk: qemu reads a VHDX byte by byte (it has no block status for it), so qemu-img compare would
  // take minutes; qemu checks the file, our reader compares (what both maps call zero is not read).
  QemuReads qemu = QemuReads::Yes;
};

class VhdxFixtureCompaction : public ::testing::TestWithParam<FixtureCase> {};

// Made by Windows, Disk2VHD and Hyper-V: compacted in place, they read the same (qemu-img compare), pass
// qemu-img check, vhdiinfo and our check, and the dry run was exact.
TEST_P(VhdxFixtureCompaction, CompactsAndComparesEqual) {
  VHDKIT_NEEDS_FIXTURES();
  TempDir dir;
  std::string img = expand_fixture(GetParam().fixture, dir);
  Report r = compact_and_referee(img, GetParam().qemu);
  EXPECT_EQ(r.blocks_released, GetParam().released);
  EXPECT_EQ(file_size(img), GetParam().size_after);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, VhdxFixtureCompaction,
                         ::testing::Values(
                             // 128 FULLY_PRESENT 2 MiB blocks, data in the first only: 260 MiB -> 6 MiB.
                             FixtureCase{"qemu-iotests/test-disk2vhd.vhdx.bz2", 127, 6 * kMiB},
                             // Hyper-V: 3 FULLY_PRESENT blocks of 0xa5 and 29 ZERO blocks: nothing to give back.
                             FixtureCase{"qemu-iotests/iotest-dynamic-1G.vhdx.bz2", 0, 100 * kMiB},
                             // Windows 10: one FULLY_PRESENT 32 MiB block holding a file system.
                             FixtureCase{"dissect.hypervisor/dynamic.vhdx.gz", 0, 36 * kMiB},
                             // Windows 10: Linux swap, one FULLY_PRESENT and one ZERO block.
                             FixtureCase{"discutils/swap.zip", 0, 36 * kMiB, QemuReads::FileOnly}),
                         [](const auto& test) {
                           std::string n = std::filesystem::path(test.param.fixture).stem().stem().string();
                           std::replace_if(
                               n.begin(), n.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); },
                               '_');
                           return n;
                         });

class VhdxDirtyLogCompaction : public ::testing::TestWithParam<const char*> {};

// A log left by Windows (or by the iotests' crash) is replayed before anything else; a dry run replays in
// memory only; the result reads what qemu reads after its own replay (qemu-img check -r all).
TEST_P(VhdxDirtyLogCompaction, ReplaysThenCompactsLikeQemuReplays) {
  VHDKIT_NEEDS_FIXTURES();
  TempDir dir;
  std::string img = expand_fixture(GetParam(), dir);
  std::string reference = dir.file("qemu-replayed.vhdx");
  run_ok("cp --sparse=always " + q(img) + " " + q(reference));
  run_ok("qemu-img check -q -r all " + q(reference));
  std::string before = sha256(img);
  Report predicted = dry_run(img);
  EXPECT_EQ(sha256(img), before) << "a dry run replayed the log to disk";
  Report done = compact_ok(img);
  EXPECT_EQ(done.file_size_after, predicted.file_size_after);
  EXPECT_EQ(file_size(img), predicted.file_size_after);
  expect_same_content(reference, img);
  expect_tools_accept(img);
  EXPECT_TRUE(open_vhdx(img).image().header().log_guid.is_zero());
  expect_fully_compacted(img);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, VhdxDirtyLogCompaction,
                         ::testing::Values("discutils/vhdx-log-replay.zip",
                                           "qemu-iotests/iotest-dirtylog-10G-4M.vhdx.bz2"),
                         [](const auto& test) { return std::string(test.index == 0 ? "Windows" : "QemuIotest"); });

TEST(VhdxCompact, FixedVhdxIsNotSupportedAndSaysWhy) {
  TempDir dir;
  std::string made = dir.file("fixed.vhdx");
  run_ok("qemu-img create -q -f vhdx -o subformat=fixed,block_size=1M " + q(made) + " 8M");
  expect_refused(made, ReturnCode::NotSupported, {"LeaveBlockAllocated", "Retrim"});
  VHDKIT_NEEDS_FIXTURES();
  expect_refused(expand_fixture("dissect.hypervisor/fixed.vhdx.gz", dir), ReturnCode::NotSupported,
                 {"LeaveBlockAllocated", "Retrim"});
}

// Our reader judges the child (qemu 7.2 does not open differencing VHDX); vhdiinfo opens it.
TEST(VhdxCompact, DifferencingChildKeepsItsVirtualContentAndThePartialBlocksTheirBits) {
  TempDir dir;
  VhdxDifferencingPair pair = make_vhdx_differencing_pair(dir);
  io::Env& env = io::Env::posix();
  const auto content = virtual_content(env, pair.child);
  const std::string parent_sha = sha256(pair.parent);
  const Guid data_guid = open_vhdx(pair.child).image().header().data_write_guid;
  ASSERT_EQ(file_size(pair.child), 16 * kMiB);

  Report r = compact_and_referee(pair.child, QemuReads::No);
  EXPECT_EQ(r.blocks_allocated_before, 10u);  // blocks 0-8 and 10 (not block 9's space, nor the sector bitmap)
  EXPECT_EQ(r.blocks_released, pair.releasable);
  EXPECT_NE(r.mode_note.find("reads zeros (ZERO)"), std::string::npos) << r.mode_note;
  EXPECT_EQ(file_size(pair.child), 9 * kMiB);
  EXPECT_TRUE(virtual_content(env, pair.child) == content) << "the child reads differently";
  EXPECT_EQ(sha256(pair.parent), parent_sha) << "the parent was written to";

  Opened after = open_vhdx(pair.child);
  vhdx::Image& image = after.image();
  EXPECT_EQ(image.header().data_write_guid, data_guid) << "the visible content did not change";
  const std::vector<PayloadState> expected{PayloadState::NotPresent,
                                           PayloadState::Zero,
                                           PayloadState::FullyPresent,
                                           PayloadState::NotPresent,
                                           PayloadState::FullyPresent,
                                           PayloadState::NotPresent,
                                           PayloadState::PartiallyPresent,
                                           PayloadState::PartiallyPresent,
                                           PayloadState::NotPresent,
                                           PayloadState::Zero,
                                           PayloadState::Zero,
                                           PayloadState::NotPresent};
  for (uint64_t b = 0; b < expected.size(); ++b) {
    EXPECT_EQ(image.block(b).payload_state(), expected[b]) << "block " << b;
    if (!image.block(b).has_data()) {
      EXPECT_EQ(image.block(b).file_offset, 0u) << "block " << b;
    }
  }
  // The sector bitmap moved (it lay last) and still serves blocks 6 and 7; released blocks have no bits.
  EXPECT_LT(image.sector_bitmap(0).file_offset, 9 * kMiB);
  for (uint64_t b : {1, 5, 8, 10}) {
    auto bits = image.block_bitmap(b);
    ASSERT_TRUE(bits.has_value());
    EXPECT_TRUE(all_zero(*bits)) << "block " << b << " kept stale sector bitmap bits";
  }
  for (uint64_t b : {6, 7}) {
    auto bits = image.block_bitmap(b);
    ASSERT_TRUE(bits.has_value());
    EXPECT_EQ((*bits)[0], std::byte{0xff}) << "block " << b;
  }
}

// Compaction changes only the FileWriteGuid: the DataWriteGuid (which children record as their parent
// linkage) stays, so a compacted parent keeps its children; the log is closed when it ends.
TEST(VhdxCompact, CompactingAParentKeepsItsChildrenLinked) {
  TempDir dir;
  std::string parent = make_dynamic_vhdx(dir, "parent.vhdx", "ZDZZDPZD");
  std::string child = dir.file("child.vhdx");
  vhdx::CreateOptions o;
  o.block_size = kMiB;
  o.parent_path = parent;
  ASSERT_TRUE(vhdx::create(io::Env::posix(), child, o).has_value());
  const auto child_content = virtual_content(io::Env::posix(), child);
  vhdx::Header before = open_vhdx(parent).image().header();

  // Full and Quick are refused on a parent (the parent rule, tests/fsmodes); Prezeroed keeps the content.
  Report r = compact_and_referee(parent, QemuReads::Yes, compact::Mode::Prezeroed);
  EXPECT_EQ(r.blocks_released, 4u);
  vhdx::Header after = open_vhdx(parent).image().header();
  EXPECT_NE(after.file_write_guid, before.file_write_guid);
  EXPECT_EQ(after.data_write_guid, before.data_write_guid);
  EXPECT_TRUE(after.log_guid.is_zero());
  EXPECT_GT(after.sequence_number, before.sequence_number);
  // The child still finds its parent (linkage = the parent's DataWriteGuid) and reads the same.
  EXPECT_TRUE(virtual_content(io::Env::posix(), child) == child_content);
  EXPECT_TRUE(our_check(io::Env::posix(), child).empty());
}

// Hyper-V leaves trimmed blocks ZERO with their space still named: given back without reading them.
TEST(VhdxCompact, ZeroBlocksStillHoldingSpaceGiveItBack) {
  TempDir dir;
  std::string img = make_dynamic_vhdx(dir, "a.vhdx", "DZZDZD", 2 * kMiB);
  mark_zero_keeping_space(img, {1, 2, 4});
  Report r = compact_and_referee(img);
  EXPECT_EQ(r.blocks_released, 3u);
  EXPECT_EQ(file_size(img), kQemuStructures + 3 * 2 * kMiB);
  EXPECT_NE(r.mode_note.find("3 blocks without data"), std::string::npos) << r.mode_note;
  Opened after = open_vhdx(img);
  for (uint64_t b : {1, 2, 4}) {
    EXPECT_EQ(after.image().block(b).payload_state(), PayloadState::Zero) << "block " << b;
    EXPECT_EQ(after.image().block(b).file_offset, 0u) << "block " << b;
  }
}

// A file the open refuses is refused before anything is written, by name.
TEST(VhdxCompact, MalformedImageIsRefusedAndUnchanged) {
  TempDir dir;
  std::string img = make_dynamic_vhdx(dir, "a.vhdx", "DZDZ");
  uint64_t entry_at = open_vhdx(img).image().bat_entry_offset(2);
  // BAT entry 2: FULLY_PRESENT at 64 GiB, far past the end of the file.
  patch_file(img, entry_at, {0x06, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00});
  expect_refused(img, ReturnCode::Failed, {"BAT entry 2 points past the end of the file"});
}

// The largest disk VHDX allows: the BAT holds 2 million entries, three blocks hold data. vhdkit compare
// referees the content (qemu reads every byte of a VHDX without block status: 64 TiB).
TEST(VhdxCompact, SixtyFourTiBDiskWithFewBlocks) {
  TempDir dir;
  std::string img = dir.file("big.vhdx");
  run_ok("qemu-img create -q -f vhdx -o block_size=32M " + q(img) + " 64T");
  run_ok(
      "qemu-io -f vhdx -c 'write -P 0 0 32M' -c 'write -P 0x11 10T 1M' -c 'write -P 0 40T 32M' "
      "-c 'write -P 0x22 63T 32M' " +
      q(img));
  std::string orig = keep_copy(img);
  Report predicted = dry_run(img);
  Report r = compact_ok(img);
  EXPECT_EQ(r.blocks_total, 2u << 20);
  EXPECT_EQ(r.blocks_released, 2u);
  EXPECT_EQ(r.file_size_after, predicted.file_size_after);
  EXPECT_EQ(file_size(orig) - file_size(img), 2 * 32 * kMiB);
  run_ok(q(vhdkit_bin()) + " compare " + q(orig) + " " + q(img));
  RunResult check = run("qemu-img check " + q(img));
  EXPECT_EQ(check.status, 0) << check.out << check.err;
  EXPECT_TRUE(our_check(io::Env::posix(), img).empty());
}

}  // namespace
}  // namespace vhdkit::testing
