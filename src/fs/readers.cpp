// SPDX-License-Identifier: Apache-2.0
#include "fs/readers.h"

#include <array>

#include "fs/fat.h"
#include "fs/lvm.h"
#include "fs/ntfs.h"
#include "fs/xfs.h"

namespace vhdkit::fs::detail {
namespace {

Result<VolumeScan> ext_reader(disk::VirtualDisk& d, std::span<const std::byte>, uint64_t offset, uint64_t size) {
  return read_ext(d, offset, size);
}

Result<VolumeScan> swap_reader(disk::VirtualDisk&, std::span<const std::byte> head, uint64_t offset, uint64_t size) {
  return read_swap(head, offset, size);
}

Result<VolumeScan> ntfs_reader(disk::VirtualDisk& d, std::span<const std::byte>, uint64_t offset, uint64_t size) {
  return read_ntfs(d, offset, size);
}

Result<VolumeScan> fat_reader(disk::VirtualDisk& d, std::span<const std::byte> head, uint64_t offset, uint64_t size) {
  return read_fat(d, head, offset, size);
}

// NTFS and FAT first: mkntfs and mkfs.fat need not overwrite an old ext superblock at byte 1024, while
// mke2fs zeroes the boot sector they live in. NTFS before FAT: an NTFS boot sector carries a BPB too.
// ext before swap: mke2fs does not clear an old swap signature beyond the superblock's sector. XFS and ext
// before LVM: mkfs.xfs and mke2fs zero the sectors an old PV label sits in, pvcreate wipes what blkid knows
// (swap too, which comes last).
constexpr std::array kReaders = {
    Reader{"ntfs", looks_like_ntfs, ntfs_reader},  // libntfs-3g
    Reader{"fat", looks_like_fat, fat_reader},     // FAT12/16/32, EFI system partitions
    Reader{"ext", looks_like_ext, ext_reader},     // libext2fs
    Reader{"xfs", looks_like_xfs, read_xfs},       // v4 and v5
    Reader{"lvm", looks_like_lvm, read_lvm},       // a PV; its linear LVs read through this table again
    Reader{"swap", looks_like_swap, swap_reader},  // Linux swap
};

}  // namespace

std::span<const Reader> readers() { return kReaders; }

const Reader* recognise(std::span<const std::byte> head) {
  for (const Reader& r : kReaders) {
    if (r.recognises(head)) return &r;
  }
  return nullptr;
}

}  // namespace vhdkit::fs::detail
