// SPDX-License-Identifier: Apache-2.0
// XFS (v4 and v5), read from its on-disk format: the free-space btree by block number of every allocation
// group, behind a clean log. See xfs.cpp.
#pragma once

#include <cstdint>
#include <span>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "fs/volume_scan.h"

namespace vhdkit::fs::detail {

// The superblock magic "XFSB" at byte 0 of the window.
bool looks_like_xfs(std::span<const std::byte> head);
// Reads [offset, offset + size) of the disk as XFS; `head` is the window's first bytes (at least a sector).
// Fails only when the disk cannot be read.
Result<VolumeScan> read_xfs(disk::VirtualDisk& disk, std::span<const std::byte> head, uint64_t offset, uint64_t size);

}  // namespace vhdkit::fs::detail
