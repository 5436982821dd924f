// SPDX-License-Identifier: Apache-2.0
// Full mode on XFS (v5 and v4) and LVM2 guests the real tools make (xfs_lvm_guest.h), as VHD and VHDX:
// the file systems check clean and hold every file, every used range reads the same, the file is no larger
// than the dry run said and shrank by the deleted data; our XFS free space equals xfs_db's exactly; a
// dirty XFS log and an LVM thin pool keep every byte they could use, and the report says why.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "compact/compact.h"
#include "compact_checks.h"
#include "open_disk.h"
#include "xfs_lvm_guest.h"

namespace vhdkit::testing {
namespace {

using compact::Mode;
using compact::Options;
using compact::Report;
using fs_test::volume_at;

// What the guest files delete (make_guest_files): a 4 MiB and a 1 MiB file.
constexpr uint64_t kDeletedBytes = 5 * kMiB;

struct Guest {
  std::string raw;
  std::vector<CheckedFs> filesystems;
  uint64_t deleted = 0;  // bytes of non-zero data no file system uses any more
};

class XfsLvm : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"mkfs.xfs", "xfs_repair", "xfs_db", "xfs_io", "pvcreate", "losetup", "qemu-img", "sfdisk"})
      if (run("command -v " + std::string(tool) + " >/dev/null").status != 0) GTEST_FAIL() << tool << " is missing";
    files_ = make_guest_files(dir_, 11);
  }

  // Dry run, Full, and the referees, on `format` made from the guest's raw disk.
  Report full_and_check(const Guest& g, const std::string& format) {
    SCOPED_TRACE(format);
    std::string img = convert(g.raw, dir_.file("full." + format), format);
    Options o;
    o.mode = Mode::Full;
    Options dry = o;
    dry.action = compact::Action::DryRun;
    const std::string before = sha256(img);
    const uint64_t size_before = file_size(img);
    Report predicted = compact_ok(img, dry);
    EXPECT_EQ(sha256(img), before) << "the dry run wrote";
    Report done = compact_ok(img, o);
    EXPECT_LE(file_size(img), predicted.file_size_after);
    EXPECT_EQ(done.blocks_released, predicted.blocks_released);
    const uint64_t block = format == "vhd" ? 2 * kMiB : kMiB;
    // The deleted data went, but for the blocks it shares with live data (at most one at each end of a run).
    if (g.deleted) {
      EXPECT_GE(size_before - file_size(img) + 4 * block, g.deleted) << done.gain_note;
    }
    std::string after = qemu_raw(img, dir_, "after." + format + ".raw");
    expect_raw_intact(dir_, after, g.raw, map_raw(g.raw).used, {});
    expect_fs_intact(dir_, after, g.filesystems);
    return done;
  }

  void expect_xfs_free_as_xfs_db(const std::string& raw, uint64_t offset, uint64_t size) {
    vhdkit::fs::UsageMap m = map_raw(raw);
    const auto* v = volume_at(m, offset);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->state, vhdkit::fs::Volume::State::Read) << v->reason;
    auto [free_blocks, bs] = xfs_free_blocks(raw, offset, size);
    EXPECT_GT(free_blocks, 0u);
    EXPECT_EQ(v->free_bytes, free_blocks * bs) << "xfs_db freesp -s: " << free_blocks << " blocks of " << bs;
  }

  TempDir dir_;
  GuestFiles files_;
};

TEST_F(XfsLvm, XfsV5BareReleasesTheDeletedDataAndAgreesWithXfsDb) {
  Guest g{dir_.file("xfs5.raw"), {}, kDeletedBytes};
  run_ok("truncate -s 64M " + q(g.raw));
  make_filled_fs(dir_, g.raw, 0, 64 * kMiB, GuestFsType::Xfs, files_);
  g.filesystems.push_back({0, 64 * kMiB, GuestFsType::Xfs, &files_});
  expect_xfs_free_as_xfs_db(g.raw, 0, 64 * kMiB);
  EXPECT_EQ(map_raw(g.raw).volumes.at(0).filesystem, "xfs");
  for (const char* f : {"vhd", "vhdx"}) {
    Report r = full_and_check(g, f);
    ASSERT_EQ(r.volumes.size(), 1u);
    EXPECT_EQ(r.volumes[0].state, "read") << r.volumes[0].reason;
  }
}

TEST_F(XfsLvm, AFragmentedXfsWithATwoLevelFreeSpaceTreeAgreesWithXfsDb) {
  // 1 KiB blocks and 600 small files, every other one deleted: more free extents than a leaf holds.
  const std::string raw = dir_.file("fragmented.raw");
  run_ok("truncate -s 32M " + q(raw));
  run_ok(xfs_mkfs_env() + "mkfs.xfs -q -f -b size=1024 " + q(raw) + " 2>&1");
  {
    Loop loop(raw, 0, 0, LoopAccess::ReadWrite);
    Mount m(dir_, loop.dev(), "");
    ASSERT_TRUE(m.ok());
    run_ok("cd " + q(m.dir()) + " && for i in $(seq 1 600); do head -c 3000 /dev/urandom > f$i; done && sync -f . && " +
           "for i in $(seq 1 2 600); do rm f$i; done");
  }
  std::string levels = run_ok("xfs_db -r -c 'agf 0' -c 'p bnolevel' " + q(raw));
  EXPECT_NE(levels.find("bnolevel = 2"), std::string::npos) << levels;
  expect_xfs_free_as_xfs_db(raw, 0, 32 * kMiB);
}

TEST_F(XfsLvm, XfsV4InGptReleasesTheFreeSpaceAndAgreesWithXfsDb) {
  // v4 is filled at mkfs time (this kernel does not mount v4); its free space then holds random bytes.
  Guest g{make_partitioned(dir_, "xfs4.raw", 66, "label: gpt\nstart=2048, size=131072, type=L\n"), {}, 0};
  make_filled_fs(dir_, g.raw, kMiB, 64 * kMiB, GuestFsType::XfsV4, files_);
  g.filesystems.push_back({kMiB, 64 * kMiB, GuestFsType::XfsV4, &files_});
  expect_xfs_free_as_xfs_db(g.raw, kMiB, 64 * kMiB);
  const auto map = map_raw(g.raw);  // held: v points into it
  const auto* v = volume_at(map, kMiB);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->filesystem, "xfs (v4)");
  g.deleted = v->free_bytes / 2;  // most of the free space is in whole blocks
  for (const char* f : {"vhd", "vhdx"}) full_and_check(g, f);
}

TEST_F(XfsLvm, LvmWithXfsAndExt4LvsReleasesFreeExtentsAndDeletedData) {
  Guest g{make_partitioned(dir_, "lvm.raw", 100, "label: dos\nstart=2048, size=200704, type=8e\n"), {}, 0};
  const uint64_t pv = kMiB, pv_size = 98 * kMiB;
  fill_random(g.raw, pv, pv_size, 3);  // what the PV's free extents hold: earlier data
  const std::string vg = unique_vg("vkxl");
  auto lvs = make_lvm(g.raw, pv, pv_size, vg, {{"root", 36}, {"scratch", 16}, {"data", 24}});
  ASSERT_EQ(lvs.size(), 3u);
  make_filled_fs(dir_, g.raw, lvs[0].offset, lvs[0].size, GuestFsType::Xfs, files_);
  make_filled_fs(dir_, g.raw, lvs[2].offset, lvs[2].size, GuestFsType::Ext4, files_);
  remove_lv(g.raw, pv, pv_size, vg, "scratch");
  g.filesystems.push_back({lvs[0].offset, lvs[0].size, GuestFsType::Xfs, &files_});
  g.filesystems.push_back({lvs[2].offset, lvs[2].size, GuestFsType::Ext4, &files_});
  // The removed LV's 16 MiB, the free extents past the last LV, the deleted files of both LVs.
  g.deleted = 16 * kMiB + 2 * kDeletedBytes;

  vhdkit::fs::UsageMap m = map_raw(g.raw);
  const auto* v = volume_at(m, pv);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type, "LVM");
  EXPECT_EQ(v->filesystem, "lvm2");
  EXPECT_EQ(v->state, vhdkit::fs::Volume::State::Read) << v->reason;
  EXPECT_TRUE(v->reason.empty()) << v->reason;
  // Exactly what LVM, xfs_db and dumpe2fs call free: the VG's free extents and each LV's free blocks.
  auto [xfs_free, xfs_bs] = xfs_free_blocks(g.raw, lvs[0].offset, lvs[0].size);
  const uint64_t vg_free = lvm_free_bytes(g.raw, pv, pv_size, vg);
  EXPECT_GE(vg_free, 16 * kMiB);
  EXPECT_EQ(v->free_bytes, vg_free + xfs_free * xfs_bs + ext_free_bytes(g.raw, lvs[2].offset, lvs[2].size));
  for (const char* f : {"vhd", "vhdx"}) full_and_check(g, f);
}

TEST_F(XfsLvm, RhelLikeLayoutReadsBootRootAndSwap) {
  // GPT: EFI (FAT32, 34 MiB), /boot ext4 (24 MiB), LVM (80 MiB: root XFS 40 MiB, swap 16 MiB).
  Guest g{make_partitioned(dir_, "rhel.raw", 141,
                           "label: gpt\nstart=2048, size=69632, type=U\nstart=71680, size=49152, type=L\n"
                           "start=120832, size=163840, type=E6D6D379-F507-44C2-A23C-238F2A3DF928\n"),
          {},
          0};
  const uint64_t efi = kMiB, boot = 35 * kMiB, pv = 59 * kMiB, pv_size = 80 * kMiB;
  {
    Loop loop(g.raw, efi, 34 * kMiB, LoopAccess::ReadWrite);
    run_ok("mkfs.vfat -F 32 " + q(loop.dev()) + " >/dev/null 2>&1");
  }
  make_filled_fs(dir_, g.raw, boot, 24 * kMiB, GuestFsType::Ext4, files_);
  fill_random(g.raw, pv, pv_size, 5);
  auto lvs = make_lvm(g.raw, pv, pv_size, unique_vg("vkrhel"), {{"root", 40}, {"swap", 16}});
  ASSERT_EQ(lvs.size(), 2u);
  make_filled_fs(dir_, g.raw, lvs[0].offset, lvs[0].size, GuestFsType::Xfs, files_);
  make_filled_fs(dir_, g.raw, lvs[1].offset, lvs[1].size, GuestFsType::Swap, files_);
  g.filesystems = {{boot, 24 * kMiB, GuestFsType::Ext4, &files_},
                   {lvs[0].offset, lvs[0].size, GuestFsType::Xfs, &files_},
                   {lvs[1].offset, lvs[1].size, GuestFsType::Swap, nullptr}};
  // The swap LV's pages, the free extents (20 MiB), the deleted files of /boot and root.
  g.deleted = 15 * kMiB + 20 * kMiB + 2 * kDeletedBytes;

  vhdkit::fs::UsageMap m = map_raw(g.raw);
  ASSERT_EQ(m.volumes.size(), 3u);
  for (uint64_t at : {boot, pv}) {
    const auto* v = volume_at(m, at);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->state, vhdkit::fs::Volume::State::Read) << v->reason;
  }
  bool root_read = false, swap_read = false;
  for (const std::string& n : m.notes) {
    root_read |= n.find("/root") != std::string::npos && n.find("xfs, read") != std::string::npos;
    swap_read |= n.find("/swap") != std::string::npos && n.find("swap, read") != std::string::npos;
  }
  EXPECT_TRUE(root_read && swap_read);
  Report r = full_and_check(g, "vhdx");
  // The EFI partition is FAT's (read by another reader, or kept whole): whatever it is, fsck.fat accepts it.
  std::string after = qemu_raw(convert(g.raw, dir_.file("x.vhdx"), "vhdx"), dir_, "efi.raw");
  Loop loop(dir_.file("after.vhdx.raw"), efi, 34 * kMiB, LoopAccess::ReadOnly);
  RunResult fsck = run("fsck.fat -n " + q(loop.dev()) + " 2>&1");
  EXPECT_EQ(fsck.status, 0) << fsck.out;
  EXPECT_EQ(r.volumes.size(), 3u);
}

TEST_F(XfsLvm, XfsWithADirtyLogKeepsEveryByte) {
  Guest g{dir_.file("dirty.raw"), {}, 0};
  run_ok("truncate -s 32M " + q(g.raw));
  make_filled_fs(dir_, g.raw, 0, 32 * kMiB, GuestFsType::Xfs, files_);
  {
    // Write without unmounting: the log is forced to disk, then the file system shut down, so committed
    // transactions wait in the log for replay.
    Loop loop(g.raw, 0, 0, LoopAccess::ReadWrite);
    Mount mnt(dir_, loop.dev(), "");
    ASSERT_TRUE(mnt.ok());
    run_ok("truncate -s 2M " + q(dir_.file("late")));
    fill_random(dir_.file("late"), 0, 2 * kMiB, 8);
    run_ok("cp " + q(dir_.file("late")) + " " + q(mnt.dir() + "/late") + " && rm " + q(mnt.dir() + "/keep1"));
    run_ok("xfs_io -x -c 'shutdown -f' " + q(mnt.dir()));
  }
  vhdkit::fs::UsageMap m = map_raw(g.raw);
  ASSERT_EQ(m.volumes.size(), 1u);
  EXPECT_EQ(m.volumes[0].state, vhdkit::fs::Volume::State::KeptWhole);
  EXPECT_NE(m.volumes[0].reason.find("the log is dirty"), std::string::npos) << m.volumes[0].reason;
  EXPECT_NE(m.volumes[0].reason.find("xfs_repair"), std::string::npos) << m.volumes[0].reason;
  std::string img = convert(g.raw, dir_.file("dirty.vhdx"), "vhdx");
  Report r = compact_ok(img, {});
  ASSERT_EQ(r.volumes.size(), 1u);
  EXPECT_NE(r.volumes[0].reason.find("the log is dirty"), std::string::npos);
  EXPECT_EQ(sha256(qemu_raw(img, dir_, "dirty.after.raw")), sha256(g.raw)) << "a byte of the dirty XFS changed";
}

TEST_F(XfsLvm, LvmWithAThinPoolKeepsThePvWhole) {
  Guest g{make_partitioned(dir_, "thin.raw", 50,
                           "label: gpt\nstart=2048, size=98304, type=E6D6D379-F507-44C2-A23C-238F2A3DF928\n"),
          {},
          0};
  const uint64_t pv = kMiB, pv_size = 48 * kMiB;
  fill_random(g.raw, pv, pv_size, 9);
  const std::string vg = unique_vg("vkthin");
  auto lvs = make_lvm(g.raw, pv, pv_size, vg, {{"data", 16}});
  ASSERT_EQ(lvs.size(), 1u);
  make_filled_fs(dir_, g.raw, lvs[0].offset, lvs[0].size, GuestFsType::Xfs, files_);
  {
    // A thin pool (its metadata and data sub-LVs on extents 4-6) added the way vgcfgrestore takes it:
    // this kernel has no device-mapper for lvcreate to build one.
    Loop loop(g.raw, pv, pv_size, LoopAccess::ReadWrite);
    const std::string text = dir_.file("vg.txt");
    lvm(loop, "vgcfgbackup -q -f " + q(text) + " " + q(vg));
    std::ifstream in(text);
    std::string s((std::istreambuf_iterator<char>(in)), {});
    auto lv = [](const std::string& name, const std::string& id, const std::string& segment) {
      return name + " {\nid = \"" + id +
             "\"\nstatus = [\"READ\", \"WRITE\"]\nflags = []\nsegment_count = 1\nsegment1 {\n" + segment + "}\n}\n";
    };
    const std::string pool =
        lv("pool", "aaaaaa-bbbb-cccc-dddd-eeee-ffff-000001",
           "start_extent = 0\nextent_count = 2\ntype = \"thin-pool\"\nmetadata = \"pool_tmeta\"\npool = "
           "\"pool_tdata\"\n"
           "transaction_id = 0\nchunk_size = 128\ndiscards = \"passdown\"\nzero_new_blocks = 1\n") +
        lv("pool_tmeta", "aaaaaa-bbbb-cccc-dddd-eeee-ffff-000002",
           "start_extent = 0\nextent_count = 1\ntype = \"striped\"\nstripe_count = 1\nstripes = [\"pv0\", 4]\n") +
        lv("pool_tdata", "aaaaaa-bbbb-cccc-dddd-eeee-ffff-000003",
           "start_extent = 0\nextent_count = 2\ntype = \"striped\"\nstripe_count = 1\nstripes = [\"pv0\", 5]\n");
    const size_t at = s.find("logical_volumes {");
    ASSERT_NE(at, std::string::npos);
    s.insert(at + std::string("logical_volumes {").size(), "\n" + pool);
    std::ofstream(text) << s;
    lvm(loop, "vgcfgrestore -q --force -f " + q(text) + " " + q(vg));
    EXPECT_NE(lvm(loop, "lvs -a -o lv_name,segtype " + q(vg)).find("thin-pool"), std::string::npos);
  }
  vhdkit::fs::UsageMap m = map_raw(g.raw);
  const auto* v = volume_at(m, pv);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->state, vhdkit::fs::Volume::State::KeptWhole);
  EXPECT_NE(v->reason.find("thin-pool"), std::string::npos) << v->reason;
  EXPECT_EQ(v->used_bytes, pv_size);
  std::string img = convert(g.raw, dir_.file("thin.vhdx"), "vhdx");
  Report r = compact_ok(img, {});
  std::string after = qemu_raw(img, dir_, "thin.after.raw");
  EXPECT_EQ(file_bytes(after, pv, pv_size), file_bytes(g.raw, pv, pv_size)) << "a byte of the thin PV changed";
  bool said = false;
  for (const auto& vr : r.volumes) said |= vr.reason.find("thin-pool") != std::string::npos;
  EXPECT_TRUE(said);
}

}  // namespace
}  // namespace vhdkit::testing
