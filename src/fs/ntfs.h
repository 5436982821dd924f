// SPDX-License-Identifier: Apache-2.0
// NTFS, read through libntfs-3g (ntfs_io.h's read-only device over the VirtualDisk).
#pragma once

#include <cstdint>
#include <span>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "fs/volume_scan.h"

namespace vhdkit::fs::detail {

// An NTFS boot sector: "NTFS    " at byte 3 and the 0x55 0xAA signature at 510.
bool looks_like_ntfs(std::span<const std::byte> head);
// Reads [offset, offset + size) as NTFS. Fails only when the disk cannot be read.
Result<VolumeScan> read_ntfs(disk::VirtualDisk& disk, uint64_t offset, uint64_t size);

}  // namespace vhdkit::fs::detail
