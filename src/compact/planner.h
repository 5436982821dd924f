// SPDX-License-Identifier: Apache-2.0
// The compaction planner: pure decisions, no I/O. Given where each allocated block lies in the host file,
// which extents of the file hold fixed metadata, and a verdict per block, it decides which blocks to release,
// which tail blocks to move into which holes, and where the file will end. The same planner serves every
// format (VHD and VHDX differ only in slot sizes, alignment and what follows the last block).
#pragma once

#include <cstdint>
#include <vector>

namespace vhdkit::compact {

// A byte range of the host file.
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t end() const { return offset + length; }
  bool operator==(const Extent&) const = default;
};

enum class Verdict { Keep, Release };

// One allocated block: its index in the format's block table, where its slot starts in the host file
// (VHD: the sector bitmap; VHDX: the payload or sector bitmap block) and how many bytes it occupies there
// (VHD: bitmap and data; VHDX: the block size, or 1 MiB for a sector bitmap block).
struct Slot {
  uint64_t block = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  Verdict verdict = Verdict::Keep;
  uint64_t end() const { return offset + length; }
  bool operator==(const Slot&) const = default;
};

struct PlanInput {
  std::vector<Slot> slots;    // every allocated block, any order
  std::vector<Extent> fixed;  // metadata that never moves (headers, block table, locators, log, ...)
  uint64_t alignment = 512;   // a moved slot starts at a multiple of this
  uint64_t trailer_size = 0;  // bytes that follow the last slot (VHD: the footer copy; VHDX: none)
  uint64_t file_size = 0;     // the file as it is now
};

struct Move {
  uint64_t block = 0;
  uint64_t from = 0;
  uint64_t to = 0;
  uint64_t length = 0;
  bool operator==(const Move&) const = default;
};

struct Plan {
  std::vector<Slot> releases;  // in file order
  std::vector<Move> moves;     // highest source first; every destination lies wholly below its source
  uint64_t new_file_size = 0;  // == file_size when nothing is gained at the end
  uint64_t blocks_kept = 0;

  bool changes_anything(uint64_t file_size) const {
    return !releases.empty() || !moves.empty() || new_file_size != file_size;
  }
};

// Moves fill the lowest holes with the highest kept blocks (each into the lowest hole it fits), stopping
// when the highest remaining block has no hole below it. Destinations are taken only from space that no kept block
// occupies before compaction (released slots, gaps, space past the metadata), so a move never overwrites bytes that the
// durable mapping still references, whatever order the moves run in.
Plan make_plan(const PlanInput& input);

// The largest power of two (between 512 and 4096) that divides every slot offset: a moved block keeps the
// alignment the image's writer chose.
uint64_t slot_alignment(const std::vector<Slot>& slots);

}  // namespace vhdkit::compact
