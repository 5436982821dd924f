// SPDX-License-Identifier: Apache-2.0
#include "fs/readers.h"

#include <array>

#include "fs/lvm.h"
#include "fs/xfs.h"

namespace vhdkit::fs::detail {
namespace {

Result<VolumeScan> ext_reader(disk::VirtualDisk& d, std::span<const std::byte>, uint64_t offset, uint64_t size) {
  return read_ext(d, offset, size);
}

Result<VolumeScan> swap_reader(disk::VirtualDisk&, std::span<const std::byte> head, uint64_t offset, uint64_t size) {
  return read_swap(head, offset, size);
}

// ext first: mke2fs does not clear an old swap signature beyond the superblock's sector. XFS and ext before
// LVM: mkfs.xfs and mke2fs zero the sectors an old PV label sits in, pvcreate wipes what blkid knows (swap
// too, which comes last).
constexpr std::array kReaders = {
    Reader{"ext", looks_like_ext, ext_reader},
    Reader{"xfs", looks_like_xfs, read_xfs},
    Reader{"lvm", looks_like_lvm, read_lvm},
    Reader{"swap", looks_like_swap, swap_reader},
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
