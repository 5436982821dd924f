// SPDX-License-Identifier: Apache-2.0
// Guest disks with XFS and LVM2, made at run time by the real tools: mkfs.xfs (v5, and v4 with -m crc=0),
// filled and emptied through a loop mount (v4, which this kernel no longer mounts: filled by a mkfs.xfs
// prototype file, its free space then written with random bytes where xfs_db says it is free); pvcreate,
// vgcreate, lvcreate and lvremove on a loop device over the PV's partition. The kernel here has no
// device-mapper, so LVs are never activated: the LVM tools run with --driverloaded n --devices LOOP (so
// that they see only this test's PV), and an LV is reached through a loop device over the bytes LVM itself
// reports for it (pe_start + its first extent * extent size, for its size; the LVs made here are linear and
// contiguous). The referees: xfs_repair -n and e2fsck -fn on each file system, every kept file's sha256
// read through a read-only loop mount (ro,norecovery for XFS), xfs_db's free-space count.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "guest_disk.h"

namespace vhdkit::testing {

// A loop device over [offset, offset + size) of a file (size 0: to its end), detached when it goes.
enum class LoopAccess { ReadWrite, ReadOnly };
class Loop {
 public:
  Loop(const std::string& file, uint64_t offset, uint64_t size, LoopAccess access);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  const std::string& dev() const { return dev_; }

 private:
  std::string dev_;
};

// A mount of `dev` on a fresh folder, unmounted when it goes (or by unmount()).
class Mount {
 public:
  Mount(const TempDir& dir, const std::string& dev, const std::string& options);
  ~Mount();
  Mount(const Mount&) = delete;
  Mount& operator=(const Mount&) = delete;
  const std::string& dir() const { return dir_; }
  bool ok() const { return ok_; }
  void unmount();

 private:
  std::string dir_;
  bool ok_ = false;
};

enum class GuestFsType { Xfs, XfsV4, Ext4, Swap };
const char* name_of(GuestFsType t);

// mkfs.xfs refuses file systems under 300 MB unless it runs under the XFS test suite's variables.
std::string xfs_mkfs_env();

// Makes a file system of `type` on [offset, offset + size) of `disk` holding `files` (the deleted ones
// written, synced and deleted: their blocks keep their bytes).
void make_filled_fs(const TempDir& dir, const std::string& disk, uint64_t offset, uint64_t size, GuestFsType type,
                    const GuestFiles& files);

// A VG name no other test uses.
std::string unique_vg(const std::string& stem);

// Runs an LVM command restricted to `loop`, without device-mapper; returns stdout.
std::string lvm(const Loop& loop, const std::string& command);

struct LvPlace {
  std::string name;
  uint64_t offset = 0;  // bytes of the disk
  uint64_t size = 0;
};
// Makes a PV over [offset, offset + size) of `disk`, VG `vg`, and one linear LV per entry (name, MiB), in
// order; where each LV lies, as LVM reports it.
std::vector<LvPlace> make_lvm(const std::string& disk, uint64_t offset, uint64_t size, const std::string& vg,
                              const std::vector<std::pair<std::string, uint64_t>>& lvs);
// lvremove of one LV of the PV over [offset, offset + size).
void remove_lv(const std::string& disk, uint64_t offset, uint64_t size, const std::string& vg, const std::string& lv);

// A file system to referee after a compaction.
struct CheckedFs {
  uint64_t offset = 0;
  uint64_t size = 0;
  GuestFsType type = GuestFsType::Xfs;
  const GuestFiles* files = nullptr;
};
// xfs_repair -n / e2fsck -fn clean, and (where the kernel mounts it) every kept file identical.
void expect_fs_intact(const TempDir& dir, const std::string& raw, const std::vector<CheckedFs>& filesystems);

// xfs_db -r -c 'freesp -s': total free blocks, and the block size.
std::pair<uint64_t, uint64_t> xfs_free_blocks(const std::string& disk, uint64_t offset, uint64_t size);

// A bare PV of 24 MiB (random bytes beneath: older data) holding a 16 MiB XFS LV filled with `files` and the
// 4 MiB of a removed LV: small enough for the crash matrix and the kill tests. Returns the XFS LV's place.
LvPlace make_xfs_in_lvm(const TempDir& dir, const std::string& raw, const GuestFiles& files);

// What LVM calls free in the VG (vgs vg_free) of the PV over [offset, offset + size), in bytes.
uint64_t lvm_free_bytes(const std::string& disk, uint64_t offset, uint64_t size, const std::string& vg);
// dumpe2fs -h: free blocks times block size of the ext file system at [offset, offset + size).
uint64_t ext_free_bytes(const std::string& disk, uint64_t offset, uint64_t size);

}  // namespace vhdkit::testing
