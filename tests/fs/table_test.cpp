// SPDX-License-Identifier: Apache-2.0
// Partition-table corner cases: hybrid MBR, a hand-built GPT with 4096-byte sectors, damaged or
// contradicting GPT copies, overlapping or oversized MBR entries, a partition table beside a bare
// superblock. Images from sfdisk/sgdisk/mke2fs, patched where a tool will not make the damage.
#include <gtest/gtest.h>

#include <boost/crc.hpp>
#include <cstring>
#include <filesystem>

#include "core/bytes.h"
#include "disk/virtual_disk.h"
#include "fs/usage_map.h"
#include "io/file.h"
#include "io/testing/fault_env.h"
#include "open_disk.h"
#include "test_support.h"

namespace {

namespace vfs = vhdkit::fs;
using vhdkit::testing::patch_file;
using vhdkit::testing::q;
using vhdkit::testing::run;
using vhdkit::testing::run_ok;
using vhdkit::testing::TempDir;

constexpr uint64_t MiB = 1 << 20;

using vhdkit::fs_test::map_ok;

bool whole(const vfs::UsageMap& m, uint64_t size) {
  return m.used.size() == 1 && m.used[0].offset == 0 && m.used[0].length == size;
}

bool any_note(const vfs::UsageMap& m, const std::string& text) {
  for (auto& n : m.notes) {
    if (n.find(text) != std::string::npos) return true;
  }
  return false;
}

class FsTables : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* t : {"mke2fs", "sfdisk", "sgdisk"}) {
      if (run(std::string("command -v ") + t + " >/dev/null 2>&1").status != 0)
        GTEST_SKIP() << t << " is not installed";
    }
  }
  std::string ext4(uint64_t mib) {
    std::string img = dir_.file("fs" + std::to_string(n_++));
    run_ok("truncate -s " + std::to_string(mib) + "M " + q(img) + " && mke2fs -q -F -t ext4 -b 4096 " + q(img) +
           " 2>&1");
    return img;
  }
  void place(const std::string& fs, const std::string& disk, uint64_t offset) {
    run_ok("dd if=" + q(fs) + " of=" + q(disk) + " bs=1M seek=" + std::to_string(offset) +
           " oflag=seek_bytes conv=notrunc,sparse status=none");
  }
  TempDir dir_;
  int n_ = 0;
};

TEST_F(FsTables, HybridMbrUsesGpt) {
  std::string disk = dir_.file("hybrid.img");
  run_ok("truncate -s 40M " + q(disk) + " && sgdisk -o -n 1:2048:+24M -t 1:8300 -n 2:0:+4M -t 2:8200 -h 1 " + q(disk) +
         " >/dev/null 2>&1");
  place(ext4(24), disk, MiB);
  vfs::UsageMap m = map_ok(disk);
  ASSERT_EQ(m.volumes.size(), 2u);
  EXPECT_EQ(m.volumes[0].table, "gpt");
  EXPECT_EQ(m.volumes[0].state, vfs::Volume::State::Read) << m.volumes[0].reason;
  EXPECT_TRUE(any_note(m, "hybrid MBR"));
}

// A GPT with 4096-byte logical blocks, built by hand (sfdisk and sgdisk use the file's 512): found after
// the 512-byte attempt fails. Then the backup and primary are made to disagree: the disk is kept whole.
TEST_F(FsTables, Gpt4KnAndContradictingCopies) {
  const uint64_t lba = 4096, size = 40 * MiB, lbas = size / lba;
  std::string disk = dir_.file("4kn.img");
  run_ok("truncate -s 40M " + q(disk));
  place(ext4(24), disk, 256 * lba);
  std::vector<uint8_t> entries(128 * 128, 0);
  // Linux filesystem 0FC63DAF-8483-4772-8E79-3D69D8477DE4, mixed-endian.
  const uint8_t linux_fs[16] = {0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47,
                                0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4};
  std::memcpy(entries.data(), linux_fs, 16);
  entries[16] = 1;  // unique GUID: anything non-zero
  vhdkit::store_le<uint64_t>(reinterpret_cast<std::byte*>(&entries[32]), 256);
  vhdkit::store_le<uint64_t>(reinterpret_cast<std::byte*>(&entries[40]), 256 + 6144 - 1);
  auto crc = [](const uint8_t* p, size_t n) {
    boost::crc_32_type c;
    c.process_bytes(p, n);
    return c.checksum();
  };
  const uint64_t array_lbas = entries.size() / lba;  // 4
  auto header = [&](uint64_t my, uint64_t alt, uint64_t array_lba) {
    std::vector<uint8_t> h(92, 0);
    std::memcpy(h.data(), "EFI PART", 8);
    auto* b = reinterpret_cast<std::byte*>(h.data());
    vhdkit::store_le<uint32_t>(b + 8, 0x00010000);
    vhdkit::store_le<uint32_t>(b + 12, 92);
    vhdkit::store_le<uint64_t>(b + 24, my);
    vhdkit::store_le<uint64_t>(b + 32, alt);
    vhdkit::store_le<uint64_t>(b + 40, 2 + array_lbas);
    vhdkit::store_le<uint64_t>(b + 48, lbas - 2 - array_lbas);
    h[56] = 7;  // disk GUID
    vhdkit::store_le<uint64_t>(b + 72, array_lba);
    vhdkit::store_le<uint32_t>(b + 80, 128);
    vhdkit::store_le<uint32_t>(b + 84, 128);
    vhdkit::store_le<uint32_t>(b + 88, crc(entries.data(), entries.size()));
    vhdkit::store_le<uint32_t>(b + 16, crc(h.data(), h.size()));
    return h;
  };
  std::vector<uint8_t> mbr(512, 0);
  mbr[446 + 4] = 0xEE;
  vhdkit::store_le<uint32_t>(reinterpret_cast<std::byte*>(&mbr[446 + 8]), 1);
  vhdkit::store_le<uint32_t>(reinterpret_cast<std::byte*>(&mbr[446 + 12]), static_cast<uint32_t>(lbas - 1));
  mbr[510] = 0x55;
  mbr[511] = 0xAA;
  patch_file(disk, 0, mbr);
  patch_file(disk, lba, header(1, lbas - 1, 2));
  patch_file(disk, 2 * lba, entries);
  patch_file(disk, (lbas - 1 - array_lbas) * lba, entries);
  patch_file(disk, (lbas - 1) * lba, header(lbas - 1, 1, lbas - 1 - array_lbas));
  vfs::UsageMap m = map_ok(disk);
  ASSERT_EQ(m.volumes.size(), 1u);
  EXPECT_EQ(m.volumes[0].offset, 256 * lba);
  EXPECT_EQ(m.volumes[0].size, 6144 * lba);
  EXPECT_EQ(m.volumes[0].state, vfs::Volume::State::Read) << m.volumes[0].reason;
  EXPECT_TRUE(m.notes.empty());
  // The backup's tables at the end are used.
  ASSERT_FALSE(m.used.empty());
  EXPECT_EQ(m.used.back().end(), size);
  EXPECT_LE(m.used.back().offset, (lbas - 1 - array_lbas) * lba);

  // The backup names a larger partition (both copies valid): which one is right is unknowable.
  vhdkit::store_le<uint64_t>(reinterpret_cast<std::byte*>(&entries[40]), 256 + 8192 - 1);
  patch_file(disk, (lbas - 1 - array_lbas) * lba, entries);
  patch_file(disk, (lbas - 1) * lba, header(lbas - 1, 1, lbas - 1 - array_lbas));
  m = map_ok(disk);
  EXPECT_TRUE(whole(m, size));
  EXPECT_TRUE(any_note(m, "differ")) << (m.notes.empty() ? "" : m.notes[0]);
  EXPECT_FALSE(m.any_filesystem_read);
}

TEST_F(FsTables, GptBothCopiesDamagedKeepsDisk) {
  std::string disk = dir_.file("g.img");
  run_ok("truncate -s 40M " + q(disk) + " && printf 'label: gpt\\nstart=2048, size=24MiB, type=linux\\n' | sfdisk -q " +
         q(disk) + " 2>&1");
  place(ext4(24), disk, MiB);
  patch_file(disk, 2 * 512 + 40, {0x11});  // the primary entry array: its CRC fails
  vfs::UsageMap m = map_ok(disk);
  EXPECT_TRUE(any_note(m, "primary")) << (m.notes.empty() ? "" : m.notes[0]);
  EXPECT_EQ(m.volumes.size(), 1u);
  patch_file(disk, 40 * MiB - 512 + 24, {0x11});  // the backup header's MyLBA
  m = map_ok(disk);
  EXPECT_TRUE(whole(m, 40 * MiB));
  EXPECT_TRUE(m.volumes.empty());
  EXPECT_TRUE(any_note(m, "neither GPT header"));
}

TEST_F(FsTables, BackupDamagedIsNoted) {
  std::string disk = dir_.file("g.img");
  run_ok("truncate -s 40M " + q(disk) + " && printf 'label: gpt\\nstart=2048, size=24MiB, type=linux\\n' | sfdisk -q " +
         q(disk) + " 2>&1");
  place(ext4(24), disk, MiB);
  patch_file(disk, 40 * MiB - 512, {'X'});
  vfs::UsageMap m = map_ok(disk);
  EXPECT_TRUE(any_note(m, "backup")) << (m.notes.empty() ? "" : m.notes[0]);
  ASSERT_EQ(m.volumes.size(), 1u);
  EXPECT_EQ(m.volumes[0].state, vfs::Volume::State::Read);
}

// MBR entries patched by hand: sfdisk refuses to write overlapping or oversized partitions.
TEST_F(FsTables, MbrOverlapAndOversize) {
  std::string disk = dir_.file("m.img");
  run_ok("truncate -s 60M " + q(disk) +
         " && printf 'label: dos\\nstart=2048, size=24MiB, type=83\\n"
         "start=53248, size=24MiB, type=83\\n' | sfdisk -q " +
         q(disk) + " 2>&1");
  place(ext4(24), disk, MiB);
  place(ext4(24), disk, 53248 * 512);
  vfs::UsageMap clean = map_ok(disk);
  ASSERT_EQ(clean.volumes.size(), 2u);
  EXPECT_EQ(clean.volumes[1].state, vfs::Volume::State::Read);
  // Partition 2 now starts inside partition 1.
  patch_file(disk, 446 + 16 + 8, {0x00, 0x80, 0x00, 0x00});  // start 32768
  vfs::UsageMap m = map_ok(disk);
  ASSERT_EQ(m.volumes.size(), 2u);
  for (auto& v : m.volumes) {
    EXPECT_EQ(v.state, vfs::Volume::State::KeptWhole);
    EXPECT_EQ(v.reason, "overlaps another partition");
  }
  // Partition 2 runs past the end of the disk.
  patch_file(disk, 446 + 16 + 8, {0x00, 0xD0, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00});
  m = map_ok(disk);
  EXPECT_TRUE(whole(m, 60 * MiB));
  EXPECT_TRUE(any_note(m, "past the end")) << (m.notes.empty() ? "" : m.notes[0]);
}

// An MBR written over a disk whose start is an ext4 superblock: one of the two is stale.
TEST_F(FsTables, MbrBesideBareSuperblockKeepsDisk) {
  std::string disk = ext4(32);
  std::vector<uint8_t> mbr(66, 0);
  mbr[4] = 0x83;
  vhdkit::store_le<uint32_t>(reinterpret_cast<std::byte*>(&mbr[8]), 2048);
  vhdkit::store_le<uint32_t>(reinterpret_cast<std::byte*>(&mbr[12]), 8192);
  mbr[64] = 0x55;
  mbr[65] = 0xAA;
  patch_file(disk, 446, mbr);
  vfs::UsageMap m = map_ok(disk);
  EXPECT_TRUE(whole(m, 32 * MiB));
  EXPECT_TRUE(any_note(m, "both start the disk"));
}

// An MBR written for 4096-byte sectors, read from a raw image (which says 512): the file system is not
// where 512-byte sectors put it, but where 4096-byte ones do. Reading it as 512 would call the real file
// system "outside every partition": the disk is kept whole instead.
TEST_F(FsTables, MbrOf4KnDiskInRawImageKeepsDisk) {
  std::string disk = dir_.file("4kn-mbr.img");
  run_ok("truncate -s 40M " + q(disk));
  place(ext4(24), disk, MiB);
  std::vector<uint8_t> mbr(66, 0);
  mbr[4] = 0x83;
  vhdkit::store_le<uint32_t>(reinterpret_cast<std::byte*>(&mbr[8]), 256);    // 1 MiB in 4 KiB sectors
  vhdkit::store_le<uint32_t>(reinterpret_cast<std::byte*>(&mbr[12]), 6144);  // 24 MiB
  mbr[64] = 0x55;
  mbr[65] = 0xAA;
  patch_file(disk, 446, mbr);
  vfs::UsageMap m = map_ok(disk);
  EXPECT_TRUE(whole(m, 40 * MiB));
  EXPECT_TRUE(any_note(m, "sector size is ambiguous"));
}

// A read error anywhere (tables, superblock, descriptors, bitmaps, journal) fails the map: it never turns
// into a map with less in use.
TEST_F(FsTables, EveryReadErrorFailsTheMap) {
  std::string disk = dir_.file("g.img");
  run_ok("truncate -s 40M " + q(disk) + " && printf 'label: gpt\\nstart=2048, size=24MiB, type=linux\\n' | sfdisk -q " +
         q(disk) + " 2>&1");
  place(ext4(24), disk, MiB);
  vfs::UsageMap clean = map_ok(disk);
  ASSERT_TRUE(clean.any_filesystem_read);
  vhdkit::io::FaultEnv counting(vhdkit::io::Env::posix(), {.counted = {vhdkit::io::Op::Read}});
  {
    auto d = vhdkit::fs_test::open_disk(counting, disk);
    ASSERT_TRUE(d);
    ASSERT_TRUE(vfs::map_usage(**d));
  }
  const uint64_t calls = counting.state().calls();
  int failed = 0, open_failed = 0;
  for (uint64_t n = 1; n <= calls; ++n) {
    vhdkit::io::FaultEnv env(vhdkit::io::Env::posix(), {.counted = {vhdkit::io::Op::Read}, .fail_at = n});
    auto d = vhdkit::fs_test::open_disk(env, disk);
    if (!d) {  // the failing read was the open's
      ++open_failed;
      continue;
    }
    auto m = vfs::map_usage(**d);
    if (!m) {
      ++failed;
      continue;
    }
    EXPECT_EQ(m->used, clean.used) << "read " << n << " failed, yet the map differs";
  }
  std::printf("%llu reads: %d failed the open, %d the map\n", static_cast<unsigned long long>(calls), open_failed,
              failed);
  EXPECT_GT(failed, 5) << "of " << calls << " reads";
}

}  // namespace

#include "fs/ranges.h"

namespace {

TEST(FsRanges, CoalescingOnlyAddsUse) {
  std::vector<vfs::ByteRange> r = {{0, 10}, {12, 3}, {20, 5}, {40, 1}, {41 + 7, 2}};
  auto before = r;
  vfs::detail::coalesce_gaps(r, 8);
  // Gaps of 2, 5 and 7 bytes (< 8) joined, the gap of 15 kept.
  EXPECT_EQ(r, (std::vector<vfs::ByteRange>{{0, 25}, {40, 10}}));
  for (auto b : before) EXPECT_EQ(vfs::detail::covered_bytes(r, b.offset, b.end()), b.length);
  vfs::detail::coalesce_gaps(r, 0);
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(vfs::detail::merge_ranges({{5, 5}, {0, 5}, {20, 0}, {8, 10}}), (std::vector<vfs::ByteRange>{{0, 18}}));
}

}  // namespace
