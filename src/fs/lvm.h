// SPDX-License-Identifier: Apache-2.0
// LVM2 physical volumes: the label, the metadata areas and the newest valid copy of the text metadata;
// physical extents no logical volume uses are unused, and each linear LV is read as a disk of its own with
// the same reader table. See lvm.cpp.
#pragma once

#include <cstdint>
#include <span>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "fs/volume_scan.h"

namespace vhdkit::fs::detail {

// "LABELONE" with type "LVM2 001" in one of the window's first four sectors.
bool looks_like_lvm(std::span<const std::byte> head);
// Reads [offset, offset + size) of the disk as an LVM2 PV. Fails only when the disk cannot be read.
Result<VolumeScan> read_lvm(disk::VirtualDisk& disk, std::span<const std::byte> head, uint64_t offset, uint64_t size);

}  // namespace vhdkit::fs::detail
