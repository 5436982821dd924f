// SPDX-License-Identifier: Apache-2.0
// VHDX as a disk::VirtualDisk: reads, writes (allocating blocks, BAT updates through the log), map and
// check, over a vhdx::Image; differencing disks open their parent through the parent locator.
//
// Read semantics of the payload block states ([MS-VHDX] 2.4.1):
//   FULLY_PRESENT: the block's bytes in the file. ZERO: zeros.
//   NOT_PRESENT, UNDEFINED, UNMAPPED (3, and 5 as old writers wrote it): the parent's bytes in a differencing
//     disk, zeros otherwise (the spec leaves UNDEFINED/UNMAPPED content open; this choice never shows stale data).
//   PARTIALLY_PRESENT (differencing only): per logical sector, the file's bytes where the sector bitmap bit is
//     set, the parent's elsewhere.
// Writes turn the blocks they touch FULLY_PRESENT (a new block at the end of the file, 1 MiB aligned, filled
// with what the block read before; a fixed disk's blocks are written where they are). Data goes first; at flush() the
// data is flushed, then the BAT changes are committed through the log and the log is closed.
#pragma once

#include <memory>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "vhdx/image.h"

namespace vhdkit::vhdx {

Result<std::unique_ptr<disk::VirtualDisk>> open_disk(io::Env& env, std::unique_ptr<io::File> file,
                                                     const disk::OpenOptions& options);

// The vhdx::Image behind a VirtualDisk that open_disk() made; nullptr for any other disk.
Image* image_of(disk::VirtualDisk& disk);

}  // namespace vhdkit::vhdx
