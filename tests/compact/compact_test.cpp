// SPDX-License-Identifier: Apache-2.0
// Compaction on real files made by qemu-img, the same cases for VHD and VHDX (2 MiB blocks both), with
// qemu-img and vhdiinfo as referees: releases and moves, the dry run, --output, refusals (read-only,
// held by qemu, held by another compaction), Pretrimmed and Retrim on zero blocks, progress and cancellation.
#include <gtest/gtest.h>

#include <filesystem>

#include "compact_checks.h"
#include "image/open_image.h"

namespace vhdkit::testing {
namespace {

using compact::Action;
using compact::Mode;
using compact::Options;
using compact::Outcome;
using compact::Report;

struct FormatCase {
  disk::Format format;
  const char* name;
  const char* extension;
  uint64_t slot;   // the file space one 2 MiB block takes: VHD its sector bitmap too, VHDX the block alone
  uint64_t slack;  // space qemu-img leaves unused before the first block (VHDX: [4 MiB, 8 MiB)), given back too
};

class Compact : public ::testing::TestWithParam<FormatCase> {
 protected:
  std::string make(const std::string& stem, const std::string& pattern) {
    return make_dynamic(dir_, stem + GetParam().extension, pattern, GetParam().format, 2 * kMiB);
  }
  std::string path(const std::string& stem) const { return dir_.file(stem + GetParam().extension); }
  uint64_t slot() const { return GetParam().slot; }

  TempDir dir_;
};

TEST_P(Compact, InterleavedZeroAndDataBlocks) {
  std::string img = make("a", "DZDZZDPZDZ");
  Report r = compact_and_referee(img);
  EXPECT_EQ(r.blocks_allocated_before, 10u);
  EXPECT_EQ(r.blocks_released, 5u);  // the 'P' block is zero in only some sectors: it stays
  EXPECT_GT(r.blocks_moved, 0u);
  EXPECT_EQ(r.bytes_released, 5 * slot() + GetParam().slack);
}

TEST_P(Compact, LastBlockMustMove) {
  std::string img = make("a", "ZZDDZD");
  Report r = compact_and_referee(img);
  EXPECT_EQ(r.blocks_released, 3u);
  EXPECT_GE(r.blocks_moved, 2u);  // blocks 5 and 3 fill the holes of blocks 0 and 1 (VHDX: block 2 the slack)
  EXPECT_EQ(r.bytes_released, 3 * slot() + GetParam().slack);
}

// Made by our own writer (image::create_image, then writes of zeros and data): qemu-img and vhdiinfo referee.
TEST_P(Compact, ImageMadeByOurWriter) {
  std::string img = path("ours");
  {
    disk::CreateOptions o;
    o.format = GetParam().format;
    o.virtual_size = 16 * kMiB;
    o.block_size = 2 * kMiB;
    auto d = image::create_image(io::Env::posix(), img, o);
    ASSERT_TRUE(d.has_value()) << d.error().what();
    std::vector<std::byte> zeros(2 * kMiB), data(2 * kMiB, std::byte{0x6b});
    for (uint64_t b : {5, 0, 7, 2, 3, 6}) ASSERT_TRUE((*d)->write(b * 2 * kMiB, b % 2 ? data : zeros).has_value());
    ASSERT_TRUE((*d)->flush().has_value());
  }
  Report r = compact_and_referee(img);
  EXPECT_EQ(r.blocks_allocated_before, 6u);
  EXPECT_EQ(r.blocks_released, 3u);  // blocks 0, 2 and 6
}

TEST_P(Compact, BlocksAllocatedOutOfOrder) {
  std::string img = make_shuffled(dir_, "a" + std::string(GetParam().extension), "DZZDZDDZ", {7, 3, 0, 5, 1, 6, 2, 4},
                                  GetParam().format);
  Report r = compact_and_referee(img);
  EXPECT_EQ(r.blocks_released, 4u);
}

// A second run finds nothing to do and writes nothing at all (not even a header).
TEST_P(Compact, ACompactedImageIsLeftAlone) {
  std::string img = make("a", "DDPD");
  EXPECT_EQ(compact_ok(img).blocks_released, 0u);  // VHDX: the blocks move into qemu's slack
  std::string before = sha256(img);
  Report r = compact_ok(img);
  EXPECT_EQ(r.blocks_released, 0u);
  EXPECT_EQ(r.bytes_released, 0u);
  EXPECT_EQ(sha256(img), before);
}

// No file system on the disk: Full falls back to Prezeroed (the zero block goes), Quick to Pretrimmed (nothing
// the image marks as empty, so nothing goes), and both say so.
TEST_P(Compact, WithoutAFileSystemFullRunsAsPrezeroedAndQuickAsPretrimmed) {
  for (Mode m : {Mode::Full, Mode::Quick, Mode::Prezeroed}) {
    std::string img = make("m", "DZ");
    Options o;
    o.mode = m;
    Report r = compact_ok(img, o);
    EXPECT_EQ(r.blocks_released, m == Mode::Quick ? 0u : 1u) << to_string(m);
    EXPECT_EQ(r.mode, m);
    if (m == Mode::Full) {
      EXPECT_NE(r.mode_note.find("Full ran as Prezeroed"), std::string::npos) << r.mode_note;
    }
    if (m == Mode::Quick) {
      EXPECT_NE(r.mode_note.find("Quick ran as Pretrimmed"), std::string::npos) << r.mode_note;
    }
    if (m != Mode::Prezeroed) {
      EXPECT_NE(r.mode_note.find("no partition table or file system recognised"), std::string::npos) << r.mode_note;
    }
    std::filesystem::remove(img);
  }
}

// Pretrimmed releases only what the image already says holds nothing: an allocated block of zeros stays (it is
// not read); Retrim punches it instead and keeps the file's size.
TEST_P(Compact, PretrimmedLeavesAllocatedZerosAndRetrimPunchesThem) {
  std::string img = make("a", "DZ");
  std::string orig = keep_copy(img);
  Options o;
  o.mode = Mode::Pretrimmed;
  Report r = compact_ok(img, o);
  EXPECT_EQ(r.blocks_released, 0u);
  expect_same_content(orig, img);
  const uint64_t size = file_size(img);
  o.mode = Mode::Retrim;
  r = compact_ok(img, o);
  EXPECT_EQ(file_size(img), size);
  EXPECT_GE(r.bytes_punched, 2 * kMiB - 4096);
  EXPECT_LT(r.allocated_bytes_after, r.allocated_bytes_before);
  expect_same_content(orig, img);
  expect_tools_accept(img);
}

TEST_P(Compact, MissingFileIsFileNotFound) {
  auto r = compact::compact_image(io::Env::posix(), path("nope"), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ReturnCode::FileNotFound);
}

TEST_P(Compact, ReadOnlyFileOrFolderIsAccessDeniedAndUntouched) {
  std::string sub = dir_.file("ro");
  std::filesystem::create_directory(sub);
  std::string img = make("ro/a", "DZ");
  std::string before = sha256(img);
  for (const std::string& target : {img, sub}) {
    Unwritable lock(target);
    auto r = compact::compact_image(io::Env::posix(), img, {});
    ASSERT_FALSE(r.has_value()) << target;
    EXPECT_EQ(r.error().code(), ReturnCode::AccessDenied) << r.error().what();
    EXPECT_EQ(sha256(img), before);
  }
  EXPECT_EQ(compact_ok(img).blocks_released, 1u);  // and once writable again, it works
}

TEST_P(Compact, DryRunWritesNothingAndPredictsExactly) {
  std::string img = make("a", "ZDZDDZZD");
  std::string before = sha256(img);
  Report predicted = dry_run(img);
  EXPECT_TRUE(predicted.dry_run);
  EXPECT_EQ(sha256(img), before);
  EXPECT_EQ(predicted.blocks_released, 4u);
  Report done = compact_ok(img);
  EXPECT_EQ(done.file_size_after, predicted.file_size_after);
  EXPECT_EQ(done.blocks_moved, predicted.blocks_moved);
  EXPECT_EQ(file_size(img), predicted.file_size_after);
}

TEST_P(Compact, OutputWritesACompactedCopyAndLeavesTheSource) {
  std::string img = make("a", "DZZDZD");
  std::string before = sha256(img);
  Options o;
  o.output_path = path("out");
  Report r = compact_ok(img, o);
  EXPECT_EQ(sha256(img), before);
  EXPECT_EQ(r.path, *o.output_path);
  EXPECT_EQ(r.blocks_released, 3u);
  EXPECT_EQ(file_size(*o.output_path), r.file_size_after);
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().string().find("vhdkit-tmp"), std::string::npos) << "left behind: " << e.path();
  }
  expect_same_content(img, *o.output_path);
  expect_tools_accept(*o.output_path);
}

TEST_P(Compact, RefusedWhileQemuHoldsTheImageWorksAfterItExits) {
  std::string img = make("a", "DZDZ");
  std::string before = sha256(img);
  QemuIoHolder qemu(img);
  auto r = compact::compact_image(io::Env::posix(), img, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ReturnCode::InUse);
  EXPECT_NE(r.error().message().find("in use"), std::string::npos) << r.error().what();
  EXPECT_EQ(sha256(img), before);
  qemu.release();
  EXPECT_EQ(compact_ok(img).blocks_released, 2u);
}

TEST_P(Compact, SecondCompactionOfTheSameImageIsRefusedWhileTheFirstHoldsIt) {
  std::string img = make("a", "DZ");
  auto holder = io::Env::posix().open(img, io::Access::ReadWrite);
  ASSERT_TRUE(holder.has_value());
  ASSERT_TRUE((*holder)->try_lock(io::LockMode::Exclusive));
  std::string before = sha256(img);
  auto r = compact::compact_image(io::Env::posix(), img, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ReturnCode::InUse);
  EXPECT_EQ(sha256(img), before);
}

TEST_P(Compact, ProgressMovesSteadilyToTheEnd) {
  std::string img = make("a", "DZDZDZDZDZDZDZDZ");
  Recorder rec;
  auto r = compact::compact_image(io::Env::posix(), img, {}, &rec);
  ASSERT_TRUE(r.has_value()) << r.error().what();
  ASSERT_GE(rec.seen.size(), 16u);  // at least one report per scanned block
  EXPECT_EQ(rec.seen.back().first, rec.seen.back().second);
}

TEST_P(Compact, CancellationAtEverySafePointLeavesAValidImageAndARerunFinishes) {
  std::string img = make("a", "ZDZDZZDDZDZD");
  std::string orig = keep_copy(img);
  Report full = dry_run(img);
  int cancelled_runs = 0;
  for (int stop_after = 0;; ++stop_after) {
    std::string work = path("work");
    run_ok("cp --sparse=always " + q(orig) + " " + q(work));
    Recorder rec(stop_after);
    auto r = compact::compact_image(io::Env::posix(), work, {}, &rec);
    ASSERT_TRUE(r.has_value()) << r.error().what();
    expect_same_content(orig, work);
    expect_tools_accept(work);
    if (r->outcome == Outcome::Completed) break;
    ++cancelled_runs;
    Report rest = compact_ok(work);
    EXPECT_EQ(rest.outcome, Outcome::Completed);
    EXPECT_EQ(file_size(work), full.file_size_after) << "stopped after " << stop_after;
    expect_same_content(orig, work);
    expect_fully_compacted(work);
  }
  EXPECT_GE(cancelled_runs, 12);  // every block of the scan plus the release, move and shrink points
}

INSTANTIATE_TEST_SUITE_P(Formats, Compact,
                         ::testing::Values(FormatCase{disk::Format::Vhd, "Vhd", ".vhd", 2 * kMiB + 512, 0},
                                           FormatCase{disk::Format::Vhdx, "Vhdx", ".vhdx", 2 * kMiB, 4 * kMiB}),
                         [](const auto& test) { return std::string(test.param.name); });

}  // namespace
}  // namespace vhdkit::testing
