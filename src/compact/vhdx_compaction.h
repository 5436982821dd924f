// SPDX-License-Identifier: Apache-2.0
// The VHDX hook of the compaction engine: a dynamic or differencing VHDX seen as a CompactableImage.
//
// What is released ([MS-VHDX] 2.5.1.1 states):
//   dynamic: a FULLY_PRESENT block whose data reads as zeros becomes NOT_PRESENT.
//   differencing: a FULLY_PRESENT or PARTIALLY_PRESENT block becomes NOT_PRESENT when the child reads what the
//     parent reads there, else ZERO when the child reads zeros there; otherwise it stays.
//   any disk: a block in a state without data (NOT_PRESENT, UNDEFINED, ZERO, UNMAPPED) whose entry still names
//     file space keeps its state and gives the space back (FileOffsetMB 0).
// Sector bitmap blocks are kept, and moved like payload blocks.
//
// Full and Quick (classify_used) also release blocks whose unused bytes hold data: NOT_PRESENT, or in a
// differencing disk ZERO where the used bytes read zeros but not the parent's.
//
// Durable steps, every metadata change through the log (write entry, flush, apply, flush), after a new
// FileWriteGuid; the DataWriteGuid stays when the virtual content stays (Prezeroed, moves: differencing
// children made from this disk stay valid), and changes, before the release, when a file-system rule
// released a block (what its unused bytes read may change):
//   release: one transaction of BAT entries; then, in a differencing disk, a second one that clears the
//     released blocks' sector bitmap bits (only once no entry can read them).
//   remap (after the executor copied the blocks into space no durable entry names and flushed): one
//     transaction pointing the BAT at the copies.
//   shrink: a transaction that records the target size, truncate, flush; finish() closes the log.
#pragma once

#include <memory>
#include <string>

#include "compact/compact.h"
#include "compact/compactable.h"
#include "disk/virtual_disk.h"

namespace vhdkit::vhdx {

// Can this opened VHDX be compacted in this mode? NotSupported naming the reason otherwise (a fixed disk in any
// mode but Retrim).
Status check_compactable(disk::VirtualDisk& disk, compact::Mode mode);
// The opened VHDX (from the VHDX driver, read-write for a run that writes) as a CompactableImage.
Result<std::unique_ptr<compact::CompactableImage>> make_compactable(std::unique_ptr<disk::VirtualDisk> disk,
                                                                    compact::Mode mode);

}  // namespace vhdkit::vhdx
