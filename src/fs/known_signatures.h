// SPDX-License-Identifier: Apache-2.0
// Volumes we recognise but do not read (encrypted, multi-device or not yet supported): named from their
// signatures and kept whole, so the report says "btrfs: not read yet, kept whole" instead of "no file
// system recognised".
#pragma once

#include <cstdint>
#include <optional>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "fs/volume_scan.h"

namespace vhdkit::fs::detail {

// The kept-whole scan of [offset, offset + size) when a known signature is found there, nullopt when none.
// Reads a few sectors at the signatures' places (the start, 4 KiB, 64 KiB, ZFS's labels, the MD RAID
// superblocks near the end). Fails only when the disk cannot be read.
Result<std::optional<VolumeScan>> find_known_signature(disk::VirtualDisk& disk, uint64_t offset, uint64_t size);

}  // namespace vhdkit::fs::detail
