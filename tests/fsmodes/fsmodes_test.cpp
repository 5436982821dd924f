// SPDX-License-Identifier: Apache-2.0
// Full and Quick on real guest disks (guest_disk.h): every ext variant of the fs tests, bare and behind MBR
// (primary, logical) and GPT (several partitions), as VHD and VHDX; after the run the file systems check clean,
// hold every file, read the same on every used range, and the file is no larger than the dry run said.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "compact/compact.h"
#include "compact_checks.h"
#include "guest_disk.h"

namespace vhdkit::testing {
namespace {

using compact::Mode;
using compact::Options;
using compact::Report;

struct Variant {
  const char* name;
  const char* mkfs;
};
const Variant kVariants[] = {
    {"ext4", "-t ext4"},
    {"ext4_no64bit", "-t ext4 -O ^64bit"},
    {"ext4_no_flex_bg", "-t ext4 -b 4096 -g 2048 -O ^flex_bg"},
    {"ext4_meta_bg", "-t ext4 -b 4096 -g 2048 -O meta_bg,^resize_inode"},
    {"ext4_bigalloc", "-t ext4 -b 4096 -O bigalloc -C 16384"},
    {"ext4_no_journal", "-t ext4 -O ^has_journal"},
    {"ext4_1k", "-t ext4 -b 1024"},
    {"ext2", "-t ext2"},
    {"ext3", "-t ext3"},
};

enum class Layout { Bare, MbrPrimary, MbrLogical, GptSeveral };
const char* name_of(Layout l) {
  switch (l) {
    case Layout::Bare: return "bare";
    case Layout::MbrPrimary: return "mbr_primary";
    case Layout::MbrLogical: return "mbr_logical";
    case Layout::GptSeveral: return "gpt";
  }
  return "?";
}

constexpr uint64_t kFsMiB = 24;

// A raw guest disk holding the variant's file system (and, in the GPT layout, a second ext4 beside it).
struct Guest {
  std::string raw;
  std::vector<GuestFs> filesystems;
};

Guest make_guest(const TempDir& dir, const Variant& v, Layout layout, const GuestFiles& files) {
  Guest g;
  std::string fs_image = make_ext(dir, v.name, v.mkfs, files, kFsMiB);
  const uint64_t fs_bytes = kFsMiB * kMiB;
  switch (layout) {
    case Layout::Bare:
      g.raw = fs_image;
      g.filesystems.push_back({0, fs_bytes, &files});
      break;
    case Layout::MbrPrimary:
      g.raw = make_partitioned(dir, "disk.raw", kFsMiB + 4, "label: dos\nstart=2048, size=49152, type=83\n");
      place(fs_image, g.raw, kMiB);
      g.filesystems.push_back({kMiB, fs_bytes, &files});
      break;
    case Layout::MbrLogical:
      g.raw = make_partitioned(dir, "disk.raw", kFsMiB + 6,
                               "label: dos\nstart=2048, size=55296, type=5\nstart=4096, size=49152, type=83\n");
      place(fs_image, g.raw, 2 * kMiB);
      g.filesystems.push_back({2 * kMiB, fs_bytes, &files});
      break;
    case Layout::GptSeveral: {
      g.raw = make_partitioned(dir, "disk.raw", 2 * kFsMiB + 4,
                               "label: gpt\nstart=2048, size=49152, type=L\nstart=51200, size=49152, type=L\n");
      place(fs_image, g.raw, kMiB);
      std::string second = make_ext(dir, std::string(v.name) + "_second", "-t ext4", files, kFsMiB);
      place(second, g.raw, 25 * kMiB);
      g.filesystems.push_back({kMiB, fs_bytes, &files});
      g.filesystems.push_back({25 * kMiB, fs_bytes, &files});
      break;
    }
  }
  return g;
}

struct Case {
  const Variant* variant;
  Layout layout;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  const Layout layouts[] = {Layout::Bare, Layout::MbrPrimary, Layout::MbrLogical, Layout::GptSeveral};
  for (size_t i = 0; i < std::size(kVariants); ++i) out.push_back({&kVariants[i], layouts[i % 4]});
  return out;
}

// The image blocks (of `block` bytes) that hold data, as qemu-img map sees them. qemu 7.2's vhdx driver has
// no block status (its map calls every byte data), so a VHDX is mapped by `vhdkit map`, which prints the same
// JSON and whose reading of the BAT the vhdx tests hold to qemu's reads.
std::set<uint64_t> blocks_with_data(const std::string& image, uint64_t block) {
  const std::string map =
      image.ends_with(".vhdx") ? q(vhdkit_bin()) + " map --json " : "qemu-img map --output=json -f vpc ";
  auto extents = nlohmann::json::parse(run_ok(map + q(image)));
  std::set<uint64_t> out;
  for (const auto& e : extents) {
    if (!e.value("data", false)) continue;
    const uint64_t start = e.at("start"), length = e.at("length");
    for (uint64_t b = start / block; b * block < start + length; ++b) out.insert(b);
  }
  return out;
}

// The blocks that hold a byte the file systems use: what Full must keep, and all it may keep.
std::set<uint64_t> blocks_in_use(const std::vector<vhdkit::fs::ByteRange>& used, uint64_t block) {
  std::set<uint64_t> out;
  for (const auto& r : used)
    for (uint64_t b = r.offset / block; b * block < r.end(); ++b) out.insert(b);
  return out;
}

class FsModes : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    for (const char* tool : {"mke2fs", "debugfs", "e2fsck", "sfdisk", "qemu-img", "vhdiinfo"})
      if (run("command -v " + std::string(tool) + " >/dev/null").status != 0) GTEST_FAIL() << tool << " is missing";
    files_ = make_guest_files(dir_, 7);
  }

  // Dry run, then the run in `mode`, on a copy of the pristine image; the referees on the result.
  Report compact_and_check(const Guest& g, const std::string& image, Mode mode) {
    Options o;
    o.mode = mode;
    Options dry = o;
    dry.action = compact::Action::DryRun;
    const std::string before = sha256(image);
    Report predicted = compact_ok(image, dry);
    EXPECT_EQ(sha256(image), before) << "the dry run wrote";
    Report done = compact_ok(image, o);
    EXPECT_EQ(done.file_size_after, predicted.file_size_after);
    EXPECT_LE(file_size(image), predicted.file_size_after);
    EXPECT_EQ(done.blocks_released, predicted.blocks_released);
    EXPECT_GT(done.bytes_released, 0u) << "deleted data was there: " << done.mode_note << " / " << done.gain_note;
    EXPECT_EQ(done.volumes.size(), predicted.volumes.size());
    for (const auto& v : done.volumes) EXPECT_EQ(v.state, "read") << v.type << ": " << v.reason;
    // The dry run counts every mode: Quick releases no more than Full, and Prezeroed nothing here (deleted
    // data is not zero); the run's own mode is the count it released.
    EXPECT_TRUE(predicted.releases.full && predicted.releases.quick && predicted.releases.prezeroed);
    if (predicted.releases.full && predicted.releases.quick) {
      EXPECT_LE(*predicted.releases.quick, *predicted.releases.full);
    }
    vhdkit::fs::UsageMap used = map_raw(g.raw);
    expect_guest_intact(dir_, image, g.raw, used.used, g.filesystems);
    return done;
  }

  TempDir dir_;
  GuestFiles files_;
};

TEST_P(FsModes, FullAndQuickKeepEveryFileAndReleaseTheDeletedData) {
  const Case& c = GetParam();
  Guest g = make_guest(dir_, *c.variant, c.layout, files_);
  for (const char* format : {"vhd", "vhdx"}) {
    SCOPED_TRACE(format);
    std::string img = convert(g.raw, dir_.file(std::string("full.") + format), format);
    Report full = compact_and_check(g, img, Mode::Full);
    EXPECT_EQ(full.releases.full, full.blocks_released);
    expect_fully_compacted(img);
    // As small as the used bytes rounded up to blocks allow: no block is kept that holds no used byte, but
    // one block at each edge of a partition may hold bytes of two neighbours (convert(): 2 MiB VHD blocks,
    // 1 MiB VHDX blocks).
    const uint64_t block = std::string(format) == "vhd" ? 2 * kMiB : kMiB;
    const auto kept = blocks_with_data(img, block), needed = blocks_in_use(map_raw(g.raw).used, block);
    EXPECT_LE(kept.size(), needed.size() + 2 * g.filesystems.size())
        << kept.size() << " blocks kept, " << needed.size() << " hold used bytes";
    EXPECT_GE(kept.size(), 1u);
  }
  // Quick on the VHD: the file-system part alone, no data read.
  std::string quick_img = convert(g.raw, dir_.file("quick.vhd"), "vhd");
  Report quick = compact_and_check(g, quick_img, Mode::Quick);
  EXPECT_EQ(quick.releases.quick, quick.blocks_released);
}

INSTANTIATE_TEST_SUITE_P(Variants, FsModes, ::testing::ValuesIn(cases()), [](const auto& test) {
  return std::string(test.param.variant->name) + "_" + name_of(test.param.layout);
});

}  // namespace
}  // namespace vhdkit::testing
