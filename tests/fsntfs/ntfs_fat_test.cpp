// SPDX-License-Identifier: Apache-2.0
// Full mode on NTFS and FAT guests made by the real tools (windows_disk.h): NTFS with clusters of 512, 4096
// and 65536 bytes behind MBR and GPT, FAT12/16/32 bare and behind a table, and a Windows-like GPT disk (FAT32
// EFI, MSR, NTFS); as VHD and VHDX. Our used map agrees exactly with ntfsinfo/ntfscluster and fsck.fat -v;
// after Full the volumes check clean, hold every file, the file is no larger than the dry run said and the
// deleted data is gone from it.
#include <gtest/gtest.h>

#include <filesystem>

#include "compact/compact.h"
#include "compact_checks.h"
#include "fs/ranges.h"
#include "windows_disk.h"

namespace vhdkit::testing {
namespace {

using compact::Mode;
using compact::Options;
using compact::Report;

enum class Table { None, Mbr, Gpt };

struct Case {
  const char* name;
  WinFs fs;
  uint64_t cluster;  // NTFS cluster size; FAT: sectors per cluster option
  int fat_bits;
  Table table;
  uint64_t mib;
};

const Case kCases[] = {
    {"ntfs512_mbr", WinFs::Ntfs, 512, 0, Table::Mbr, 24},   {"ntfs4k_gpt", WinFs::Ntfs, 4096, 0, Table::Gpt, 24},
    {"ntfs64k_gpt", WinFs::Ntfs, 65536, 0, Table::Gpt, 32}, {"ntfs4k_bare", WinFs::Ntfs, 4096, 0, Table::None, 24},
    {"fat12_bare", WinFs::Fat, 8, 12, Table::None, 12},     {"fat16_mbr", WinFs::Fat, 4, 16, Table::Mbr, 24},
    {"fat32_gpt", WinFs::Fat, 1, 32, Table::Gpt, 40},       {"fat32_bare", WinFs::Fat, 1, 32, Table::None, 40},
};

struct Guest {
  std::string raw;
  std::vector<WinVolume> volumes;
};

Guest make_guest(const TempDir& dir, const Case& c, const GuestFiles& files) {
  std::string fs = c.fs == WinFs::Ntfs
                       ? make_ntfs(dir, c.name, c.cluster, files, c.mib)
                       : make_fat(dir, c.name, c.fat_bits, "-s " + std::to_string(c.cluster), files, c.mib);
  const uint64_t bytes = c.mib * kMiB, sectors = bytes / 512;
  Guest g;
  switch (c.table) {
    case Table::None:
      g.raw = fs;
      g.volumes.push_back({c.fs, 0, bytes, &files});
      break;
    case Table::Mbr: {
      const char* type = c.fs == WinFs::Ntfs ? "7" : "e";
      g.raw = make_partitioned(dir, "disk.raw", c.mib + 2,
                               "label: dos\nstart=2048, size=" + std::to_string(sectors) + ", type=" + type + "\n");
      place(fs, g.raw, kMiB);
      g.volumes.push_back({c.fs, kMiB, bytes, &files});
      break;
    }
    case Table::Gpt: {
      const char* type = c.fs == WinFs::Ntfs ? "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" : "U";
      g.raw = make_partitioned(dir, "disk.raw", c.mib + 2,
                               "label: gpt\nstart=2048, size=" + std::to_string(sectors) + ", type=" + type + "\n");
      place(fs, g.raw, kMiB);
      g.volumes.push_back({c.fs, kMiB, bytes, &files});
      break;
    }
  }
  return g;
}

// Our map's used bytes inside the volume's cluster area equal what the file system's own tools count.
void expect_map_matches_tools(const TempDir& dir, const Guest& g, const vhdkit::fs::UsageMap& map) {
  int n = 0;
  for (const WinVolume& v : g.volumes) {
    std::string part = extract(dir, g.raw, v.offset, v.size, "before" + std::to_string(n++) + ".part");
    ToolCount c = v.fs == WinFs::Ntfs ? ntfs_tool_count(part) : fat_tool_count(part);
    ASSERT_GT(c.cluster, 0u);
    const uint64_t lo = v.offset + c.data_start, hi = lo + c.clusters * c.cluster;
    EXPECT_EQ(vhdkit::fs::detail::covered_bytes(map.used, lo, hi), c.used_clusters * c.cluster)
        << "used clusters: the tools count " << c.used_clusters;
    // Everything before the data area (FAT) and past the last cluster is kept.
    EXPECT_EQ(vhdkit::fs::detail::covered_bytes(map.used, v.offset, lo), lo - v.offset);
    EXPECT_EQ(vhdkit::fs::detail::covered_bytes(map.used, hi, v.offset + v.size), v.offset + v.size - hi);
  }
}

class NtfsFat : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    for (const char* tool : {"mkntfs", "ntfs-3g", "ntfsfix", "ntfsinfo", "ntfscluster", "mkfs.vfat", "fsck.fat",
                             "mcopy", "mdel", "sfdisk", "qemu-img"})
      if (run("command -v " + std::string(tool) + " >/dev/null").status != 0) GTEST_FAIL() << tool << " is missing";
    files_ = make_guest_files(dir_, 11);
  }

  void compact_and_check(const Guest& g, const std::string& image, const vhdkit::fs::UsageMap& map) {
    Options o;
    o.mode = Mode::Full;
    Options dry = o;
    dry.action = compact::Action::DryRun;
    const std::string before = sha256(image);
    const uint64_t size_before = file_size(image);
    Report predicted = compact_ok(image, dry);
    EXPECT_EQ(sha256(image), before) << "the dry run wrote";
    Report done = compact_ok(image, o);
    EXPECT_LE(file_size(image), predicted.file_size_after);
    for (const auto& v : done.volumes) {
      if (v.type == "Microsoft reserved") continue;
      EXPECT_EQ(v.state, "read") << v.type << ": " << v.reason;
    }
    // The 4 MiB deleted file covers at least 4 MiB / block - 1 whole blocks (VHD: 2 MiB, VHDX: 1 MiB blocks).
    const uint64_t block = image.ends_with(".vhdx") ? kMiB : 2 * kMiB;
    EXPECT_GE(size_before - file_size(image), 4 * kMiB - block) << done.mode_note << " / " << done.gain_note;
    expect_windows_intact(dir_, image, g.raw, map.used, g.volumes);
  }

  TempDir dir_;
  GuestFiles files_;
};

TEST_P(NtfsFat, MapAgreesWithTheToolsAndFullKeepsEveryFile) {
  const Case& c = GetParam();
  Guest g = make_guest(dir_, c, files_);
  vhdkit::fs::UsageMap map = map_raw(g.raw);
  ASSERT_EQ(map.volumes.size(), 1u);
  EXPECT_EQ(map.volumes[0].state, vhdkit::fs::Volume::State::Read) << map.volumes[0].reason;
  const std::string want = c.fs == WinFs::Ntfs ? "ntfs" : "fat" + std::to_string(c.fat_bits);
  EXPECT_EQ(map.volumes[0].filesystem, want);
  expect_map_matches_tools(dir_, g, map);
  for (const char* format : {"vhd", "vhdx"}) {
    SCOPED_TRACE(format);
    compact_and_check(g, convert(g.raw, dir_.file(std::string("full.") + format), format), map);
  }
}

INSTANTIATE_TEST_SUITE_P(Volumes, NtfsFat, ::testing::ValuesIn(kCases),
                         [](const auto& test) { return std::string(test.param.name); });

// A Windows guest as Hyper-V installs it: GPT with an EFI system partition (FAT32), an MSR and NTFS.
TEST(NtfsFatWindowsLayout, EfiMsrAndNtfsAreEachReadAndFullKeepsEveryFile) {
  TempDir dir;
  GuestFiles files = make_guest_files(dir, 12);
  std::string efi = make_fat(dir, "efi", 32, "-s 1", files, 40);
  std::string ntfs = make_ntfs(dir, "c", 4096, files, 32);
  // 1 MiB: table; 40 MiB EFI at 1 MiB; 16 MiB MSR at 41 MiB; 32 MiB NTFS at 57 MiB.
  std::string raw = make_partitioned(dir, "win.raw", 90,
                                     "label: gpt\nstart=2048, size=81920, type=U\n"
                                     "start=83968, size=32768, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE\n"
                                     "start=116736, size=65536, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n");
  place(efi, raw, kMiB);
  fill_random(raw, 41 * kMiB, kMiB, 5);  // an MSR is opaque: whatever it holds stays
  place(ntfs, raw, 57 * kMiB);
  vhdkit::fs::UsageMap map = map_raw(raw);
  ASSERT_EQ(map.volumes.size(), 3u);
  EXPECT_EQ(map.volumes[0].filesystem, "fat32");
  EXPECT_EQ(map.volumes[0].state, vhdkit::fs::Volume::State::Read) << map.volumes[0].reason;
  EXPECT_EQ(map.volumes[1].type, "Microsoft reserved");
  EXPECT_EQ(map.volumes[1].state, vhdkit::fs::Volume::State::KeptWhole);
  EXPECT_EQ(map.volumes[2].filesystem, "ntfs");
  EXPECT_EQ(map.volumes[2].state, vhdkit::fs::Volume::State::Read) << map.volumes[2].reason;
  Guest g{raw, {{WinFs::Fat, kMiB, 40 * kMiB, &files}, {WinFs::Ntfs, 57 * kMiB, 32 * kMiB, &files}}};
  expect_map_matches_tools(dir, g, map);
  for (const char* format : {"vhd", "vhdx"}) {
    SCOPED_TRACE(format);
    std::string img = convert(raw, dir.file(std::string("win.") + format), format);
    Options o;
    o.mode = Mode::Full;
    Options dry = o;
    dry.action = compact::Action::DryRun;
    Report predicted = compact_ok(img, dry);
    const uint64_t before = file_size(img);
    Report done = compact_ok(img, o);
    EXPECT_LE(file_size(img), predicted.file_size_after);
    // The deleted 4 MiB files of both volumes, less a block each at their ends.
    const uint64_t block = img.ends_with(".vhdx") ? kMiB : 2 * kMiB;
    EXPECT_GE(before - file_size(img), 8 * kMiB - 2 * block) << done.gain_note;
    expect_windows_intact(dir, img, raw, map.used, g.volumes);
  }
}

}  // namespace
}  // namespace vhdkit::testing
