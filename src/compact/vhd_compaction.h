// SPDX-License-Identifier: Apache-2.0
// The VHD hook of the compaction engine: a dynamic or differencing VHD seen as a CompactableImage.
// Durable steps (ARCHITECTURE.md, durability rules D4 and D5): release = BAT entries to 0xFFFFFFFF, flush; remap (the
// executor has copied the blocks into unreferenced space and flushed) = point the BAT entries at the copies, flush;
// shrink = write the footer at the new end, flush, truncate, flush. Every BAT change is a whole aligned sector write.
#pragma once

#include <memory>
#include <string>

#include "compact/compact.h"
#include "compact/compactable.h"
#include "disk/virtual_disk.h"

namespace vhdkit::vhd {

// Can this opened VHD be compacted in this mode? NotSupported naming the reason otherwise (a fixed disk in any
// mode but Retrim).
Status check_compactable(disk::VirtualDisk& disk, compact::Mode mode);
// The opened VHD (from the VHD driver, read-write for a run that writes) as a CompactableImage.
Result<std::unique_ptr<compact::CompactableImage>> make_compactable(std::unique_ptr<disk::VirtualDisk> disk,
                                                                    compact::Mode mode);

}  // namespace vhdkit::vhd
