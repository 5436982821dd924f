// SPDX-License-Identifier: Apache-2.0
// What the compaction executor asks of an image format: the layout of its blocks in the host file, a
// verdict on each allocated block, and three durable steps. Each step returns only after its writes are
// flushed in the order of ARCHITECTURE.md's durability rules (D1-D6), so that a power cut at any moment leaves a valid
// image with the same virtual content. VHD implements it in src/vhd/vhd_compaction.*, VHDX in
// src/vhdx/vhdx_compaction.*.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "compact/planner.h"
#include "core/error.h"
#include "disk/virtual_disk.h"
#include "fs/usage_map.h"

namespace vhdkit::compact {

// Retrim: a run of virtual bytes that the host file holds as they are (VHD block data, VHDX payload blocks, a
// fixed disk's data area, a raw image).
struct StoredRun {
  uint64_t virtual_offset = 0;
  uint64_t file_offset = 0;
  uint64_t length = 0;
  bool operator==(const StoredRun&) const = default;
};

class CompactableImage {
 public:
  virtual ~CompactableImage() = default;

  virtual const std::string& path() const = 0;
  virtual disk::Format format() const = 0;
  virtual disk::DiskType type() const = 0;
  virtual uint64_t block_size() const = 0;
  virtual uint64_t block_count() const = 0;
  // Blocks whose data this file holds (VHDX: FULLY_ and PARTIALLY_PRESENT payload blocks; not the sector
  // bitmap blocks, nor entries that only name file space).
  virtual uint64_t blocks_allocated() const = 0;
  // The image's own host file (locks are taken on it, so that they cover the descriptor that writes).
  virtual io::File& file() = 0;
  // The opened image as a virtual disk (reads through the parent chain).
  virtual disk::VirtualDisk& disk() = 0;

  // Slots of every block that holds file space, fixed metadata, alignment, trailer, file size. A slot the
  // format can release without reading it comes with the verdict Release (VHDX: a ZERO or UNMAPPED block
  // that still names file space); the others come as Keep, and the zero scan asks classify() about them.
  virtual Result<PlanInput> layout() = 0;

  // Release when dropping the block keeps the virtual content the same: all zeros in a dynamic disk, or
  // (differencing) no sector present or every present sector equal to what the parent chain reads there.
  // A block zero in only some sectors is kept.
  virtual Result<Verdict> classify(const Slot& slot) = 0;

  // The virtual bytes the slot's block holds ([block * block_size, next block) clipped to the virtual size;
  // empty for a block past the disk's end), or nothing for a slot that holds no virtual data (a VHDX sector
  // bitmap block): the file-system rules never release those.
  virtual std::optional<fs::ByteRange> virtual_extent(const Slot& slot) const = 0;
  // The file-system rules' verdict (Full, Quick; compact/reclaim_policy.h): Release when, on every `used` byte
  // (virtual-disk offsets inside virtual_extent(slot), sorted, disjoint), the disk would read the same without
  // the block: zeros in a dynamic disk, the parent's bytes (or, in a VHDX, zeros) in a differencing one. Only
  // the used bytes are read; with none the block is released without reading. What the unused bytes read may
  // change: the format records that (VHDX: a new DataWriteGuid when release() runs).
  virtual Result<Verdict> classify_used(const Slot& slot, std::span<const fs::ByteRange> used) = 0;

  // Pretrimmed (and before every zero scan): the verdict from the host file alone, no data read. Release when
  // the block's stored bytes are all holes or unwritten extents (io::File::data_ranges) and dropping the block
  // keeps what the disk reads; nothing when the host stores data there or the format cannot tell.
  virtual Result<std::optional<Verdict>> classify_holes(const Slot& slot) = 0;

  // Retrim: every run of virtual bytes the file holds as they are, in file order. Punching a hole in a part of
  // one makes it read zeros (a differencing disk reads a sector the bitmap says the child does not hold from
  // the parent, whatever the child's bytes: punching those changes nothing).
  virtual Result<std::vector<StoredRun>> stored_runs() = 0;
  // Retrim, before the first hole over bytes that no file system uses (they may hold deleted data, and will
  // read zeros): VHDX records it with a new DataWriteGuid. Ends flushed.
  virtual Status begin_visible_change() { return ok(); }

  // Durable steps (each one ends with a flush):
  //   release: unmap the blocks (reads now fall through to zeros or to the parent).
  //   remap: point the block table at the copies of moved blocks (the executor has copied them into space
  //     no durable entry names, and flushed).
  //   shrink: move whatever must follow the last block (VHD footer) to the new end, flush, truncate, flush.
  virtual Status release(std::span<const Slot> slots) = 0;
  virtual Status remap(std::span<const Move> moves) = 0;
  virtual Status shrink(uint64_t new_file_size) = 0;
  // After the last step of a run that wrote (also when it stopped early): leave nothing pending (VHDX: close
  // the log so that readers need no replay).
  virtual Status finish() { return ok(); }
  // Said in the report: what the format did differently (e.g. blocks kept because the image asks for it).
  virtual std::string note() const { return {}; }
};

}  // namespace vhdkit::compact
