// SPDX-License-Identifier: Apache-2.0
// FAT12/16/32 (EFI system partitions, USB sticks, old Windows data partitions), read by hand from
// Microsoft's FAT specification (fatgen103): no maintained library fits a read-only, by-offset reader.
#pragma once

#include <cstdint>
#include <span>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "fs/volume_scan.h"

namespace vhdkit::fs::detail {

// A boot sector whose BPB looks like FAT's (jump, bytes per sector, media byte, FAT size, total sectors),
// and is not NTFS's, exFAT's or BitLocker's.
bool looks_like_fat(std::span<const std::byte> head);
// Reads [offset, offset + size) as FAT12/16/32. Fails only when the disk cannot be read.
Result<VolumeScan> read_fat(disk::VirtualDisk& disk, std::span<const std::byte> head, uint64_t offset, uint64_t size);

}  // namespace vhdkit::fs::detail
