// SPDX-License-Identifier: Apache-2.0
#include "xfs_lvm_guest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace vhdkit::testing {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  return s.substr(b);
}

uint64_t number_after(const std::string& text, const std::string& key) {
  size_t at = text.find(key);
  EXPECT_NE(at, std::string::npos) << key << " not in:\n" << text;
  if (at == std::string::npos) return 0;
  return std::stoull(text.substr(at + key.size()));
}

// The v4 prototype file of mkfs.xfs: the kept files, in their folders.
std::string prototype(const TempDir& dir, const GuestFiles& files) {
  std::string proto = dir.file("xfs.proto");
  std::ofstream out(proto);
  out << "/dev/null\n0 0\nd--755 0 0\n";
  std::string open_dir;
  for (const auto& [path, sha] : files.kept) {
    std::filesystem::path p(path);
    std::string parent = p.parent_path().relative_path().string();
    if (parent != open_dir) {
      if (!open_dir.empty()) out << "$\n";
      if (!parent.empty()) out << parent << " d--755 0 0\n";
      open_dir = parent;
    }
    out << p.filename().string() << " ---644 0 0 " << files.folder << path << "\n";
  }
  if (!open_dir.empty()) out << "$\n";
  out << "$\n";
  return proto;
}

// Writes random bytes over every free extent xfs_db lists, as deleted files would leave them.
void dirty_free_space(const std::string& disk, uint64_t offset, uint64_t size, uint64_t seed) {
  Loop loop(disk, offset, size, LoopAccess::ReadOnly);
  std::string geo = run_ok("xfs_db -r -c 'sb 0' -c 'p agblocks blocksize' " + q(loop.dev()));
  const uint64_t agblocks = number_after(geo, "agblocks = "), bs = number_after(geo, "blocksize = ");
  std::istringstream in(run_ok("xfs_db -r -c 'freesp -d' " + q(loop.dev())));
  std::string line;
  uint64_t n = 0;
  // Extent lines ("agno agbno len") until the histogram ("from to extents blocks pct").
  while (std::getline(in, line) && line.find("from") == std::string::npos) {
    std::istringstream l(line);
    uint64_t ag = 0, agbno = 0, len = 0;
    if (!(l >> ag >> agbno >> len)) continue;
    fill_random(disk, offset + (ag * agblocks + agbno) * bs, len * bs, seed + n++);
  }
  EXPECT_GT(n, 0u) << "xfs_db lists no free extent";
}

}  // namespace

Loop::Loop(const std::string& file, uint64_t offset, uint64_t size, LoopAccess access) {
  std::string cmd = "losetup -f --show";
  if (access == LoopAccess::ReadOnly) cmd += " -r";
  if (offset) cmd += " -o " + std::to_string(offset);
  if (size) cmd += " --sizelimit " + std::to_string(size);
  dev_ = trim(run_ok(cmd + " " + q(file)));
}

Loop::~Loop() {
  if (!dev_.empty()) run("losetup -d " + q(dev_));
}

Mount::Mount(const TempDir& dir, const std::string& dev, const std::string& options) {
  static std::atomic<int> counter{0};
  dir_ = dir.file("mnt" + std::to_string(counter++));
  std::filesystem::create_directories(dir_);
  RunResult r = run("mount " + (options.empty() ? std::string() : "-o " + options + " ") + q(dev) + " " + q(dir_));
  ok_ = r.status == 0;
  EXPECT_TRUE(ok_) << "mount " << dev << ": " << r.err;
}

Mount::~Mount() { unmount(); }

void Mount::unmount() {
  if (ok_) run_ok("umount " + q(dir_));
  ok_ = false;
}

const char* name_of(GuestFsType t) {
  switch (t) {
    case GuestFsType::Xfs: return "xfs";
    case GuestFsType::XfsV4: return "xfs_v4";
    case GuestFsType::Ext4: return "ext4";
    case GuestFsType::Swap: return "swap";
  }
  return "?";
}

std::string xfs_mkfs_env() { return "TEST_DEV=1 TEST_DIR=1 QA_CHECK_FS=1 "; }

void make_filled_fs(const TempDir& dir, const std::string& disk, uint64_t offset, uint64_t size, GuestFsType type,
                    const GuestFiles& files) {
  if (type == GuestFsType::XfsV4) {
    Loop loop(disk, offset, size, LoopAccess::ReadWrite);
    run_ok(xfs_mkfs_env() + "mkfs.xfs -q -f -m crc=0 -p " + q(prototype(dir, files)) + " " + q(loop.dev()) + " 2>&1");
    dirty_free_space(disk, offset, size, 91);
    return;
  }
  if (type == GuestFsType::Swap) {
    fill_random(disk, offset, size, 77);
    Loop loop(disk, offset, size, LoopAccess::ReadWrite);
    run_ok("mkswap -q " + q(loop.dev()) + " 2>&1");
    return;
  }
  Loop loop(disk, offset, size, LoopAccess::ReadWrite);
  if (type == GuestFsType::Xfs) {
    run_ok(xfs_mkfs_env() + "mkfs.xfs -q -f " + q(loop.dev()) + " 2>&1");
  } else {
    run_ok("mke2fs -q -F -t ext4 " + q(loop.dev()) + " 2>&1");
  }
  Mount m(dir, loop.dev(), "");
  ASSERT_TRUE(m.ok());
  run_ok("cp -r " + q(files.folder + "/.") + " " + q(m.dir()));
  run_ok("sync -f " + q(m.dir()));
  for (const std::string& f : files.deleted) run_ok("rm " + q(m.dir() + f));
  m.unmount();
}

std::string unique_vg(const std::string& stem) {
  static std::atomic<int> counter{0};
  return stem + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
}

std::string lvm(const Loop& loop, const std::string& command) {
  // No device-mapper; only this PV; and no backup or archive copies left in /etc/lvm.
  return run_ok(command + " --driverloaded n --devices " + q(loop.dev()) +
                " --config 'backup/backup=0 backup/archive=0' 2>/dev/null");
}

std::vector<LvPlace> make_lvm(const std::string& disk, uint64_t offset, uint64_t size, const std::string& vg,
                              const std::vector<std::pair<std::string, uint64_t>>& lvs) {
  Loop loop(disk, offset, size, LoopAccess::ReadWrite);
  lvm(loop, "pvcreate -q -y " + q(loop.dev()));
  lvm(loop, "vgcreate -q " + q(vg) + " " + q(loop.dev()));
  for (const auto& [name, mib] : lvs)
    lvm(loop, "lvcreate -q -an -Zn -L " + std::to_string(mib) + "M -n " + q(name) + " " + q(vg));
  const uint64_t pe_start = std::stoull(trim(lvm(loop, "pvs --noheadings --units b --nosuffix -o pe_start")));
  const uint64_t extent =
      std::stoull(trim(lvm(loop, "vgs --noheadings --units b --nosuffix -o vg_extent_size " + q(vg))));
  std::istringstream in(lvm(loop, "lvs --noheadings --units b --nosuffix -o lv_name,lv_size,seg_pe_ranges " + q(vg)));
  std::vector<LvPlace> out;
  std::string name, ranges;
  uint64_t lv_size = 0;
  while (in >> name >> lv_size >> ranges) {
    // "/dev/loopN:first-last": one segment, as lvcreate lays out LVs on an empty PV.
    const uint64_t first = std::stoull(ranges.substr(ranges.rfind(':') + 1));
    out.push_back({name, offset + pe_start + first * extent, lv_size});
  }
  std::vector<LvPlace> ordered;
  for (const auto& [n, mib] : lvs)
    for (const LvPlace& p : out)
      if (p.name == n) ordered.push_back(p);
  EXPECT_EQ(ordered.size(), lvs.size());
  return ordered;
}

void remove_lv(const std::string& disk, uint64_t offset, uint64_t size, const std::string& vg, const std::string& lv) {
  Loop loop(disk, offset, size, LoopAccess::ReadWrite);
  lvm(loop, "lvremove -q -y " + q(vg + "/" + lv));
}

void expect_fs_intact(const TempDir& dir, const std::string& raw, const std::vector<CheckedFs>& filesystems) {
  for (const CheckedFs& f : filesystems) {
    SCOPED_TRACE(std::string(name_of(f.type)) + " at " + std::to_string(f.offset));
    if (f.type == GuestFsType::Swap) continue;
    Loop loop(raw, f.offset, f.size, LoopAccess::ReadOnly);
    const bool xfs = f.type != GuestFsType::Ext4;
    RunResult fsck = run((xfs ? "xfs_repair -n -o force_geometry " : "e2fsck -fn ") + q(loop.dev()) + " 2>&1");
    EXPECT_EQ(fsck.status, 0) << fsck.out << fsck.err;
    if (f.type == GuestFsType::XfsV4 || !f.files) continue;  // this kernel does not mount XFS v4
    Mount m(dir, loop.dev(), xfs ? "ro,norecovery" : "ro,noload");
    if (!m.ok()) continue;
    for (const auto& [name, sha] : f.files->kept) {
      std::string got = m.dir() + name;
      EXPECT_TRUE(std::filesystem::exists(got)) << name << " lost";
      if (std::filesystem::exists(got)) {
        EXPECT_EQ(sha256(got), sha) << name;
      }
    }
    for (const std::string& name : f.files->deleted) EXPECT_FALSE(std::filesystem::exists(m.dir() + name)) << name;
  }
}

std::pair<uint64_t, uint64_t> xfs_free_blocks(const std::string& disk, uint64_t offset, uint64_t size) {
  Loop loop(disk, offset, size, LoopAccess::ReadOnly);
  std::string free = run_ok("xfs_db -r -c 'freesp -s' " + q(loop.dev()));
  std::string geo = run_ok("xfs_db -r -c 'sb 0' -c 'p blocksize' " + q(loop.dev()));
  return {number_after(free, "total free blocks "), number_after(geo, "blocksize = ")};
}

LvPlace make_xfs_in_lvm(const TempDir& dir, const std::string& raw, const GuestFiles& files) {
  constexpr uint64_t size = 24 * kMiB;
  run_ok("truncate -s " + std::to_string(size) + " " + q(raw));
  fill_random(raw, 0, size, 31);
  const std::string vg = unique_vg("vksmall");
  auto lvs = make_lvm(raw, 0, size, vg, {{"root", 16}, {"old", 4}});
  EXPECT_EQ(lvs.size(), 2u);
  if (lvs.empty()) return {};
  make_filled_fs(dir, raw, lvs[0].offset, lvs[0].size, GuestFsType::Xfs, files);
  remove_lv(raw, 0, size, vg, "old");
  return lvs[0];
}

uint64_t lvm_free_bytes(const std::string& disk, uint64_t offset, uint64_t size, const std::string& vg) {
  Loop loop(disk, offset, size, LoopAccess::ReadOnly);
  return std::stoull(trim(lvm(loop, "vgs --noheadings --units b --nosuffix -o vg_free " + q(vg))));
}

uint64_t ext_free_bytes(const std::string& disk, uint64_t offset, uint64_t size) {
  Loop loop(disk, offset, size, LoopAccess::ReadOnly);
  std::string h = run_ok("dumpe2fs -h " + q(loop.dev()) + " 2>/dev/null");
  return number_after(h, "Free blocks:") * number_after(h, "Block size:");
}

}  // namespace vhdkit::testing
