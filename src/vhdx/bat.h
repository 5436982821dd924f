// SPDX-License-Identifier: Apache-2.0
// The VHDX Block Allocation Table ([MS-VHDX] 2.4, 2.5): its geometry (payload and sector bitmap entries
// interleaved by the chunk ratio) and the structural rules every entry must follow.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vhdx/bat_table.h"
#include "vhdx/format.h"

namespace vhdkit::vhdx {

struct BatGeometry {
  uint64_t virtual_size = 0;
  uint32_t block_size = 0;
  uint32_t logical_sector_size = 512;
  bool differencing = false;
  bool leave_block_allocated = false;  // fixed disks: blocks in other states keep their file space
  uint64_t chunk_ratio = 0;            // payload blocks per sector bitmap block: 2^23 * sector size / block size
  uint64_t payload_blocks = 0;         // ceil(virtual size / block size)
  uint64_t bitmap_blocks = 0;          // ceil(payload blocks / chunk ratio)
  uint64_t total_entries = 0;          // entries the BAT region must hold

  static BatGeometry make(uint64_t virtual_size, uint32_t block_size, uint32_t logical_sector_size, bool differencing);
  // BAT index of payload block `block`, and of the sector bitmap block of chunk `chunk`.
  uint64_t payload_index(uint64_t block) const { return block + block / chunk_ratio; }
  uint64_t bitmap_index(uint64_t chunk) const { return chunk * (chunk_ratio + 1) + chunk_ratio; }
  bool is_bitmap_index(uint64_t index) const { return index % (chunk_ratio + 1) == chunk_ratio; }
  // The payload block whose entry has this index (not a sector bitmap index).
  uint64_t block_of_index(uint64_t index) const { return index - index / (chunk_ratio + 1); }
  // Logical sectors a payload block holds (= bits of the sector bitmap that describe it).
  uint64_t sectors_per_block() const { return block_size / logical_sector_size; }
};

// What the file around the BAT looks like, for the placement rules.
struct FileLayout {
  uint64_t file_size = 0;
  std::vector<std::pair<uint64_t, uint64_t>> reserved;  // header section, log, regions: (offset, length)
};

// Every structural problem of the BAT, as sentences: reserved states, PARTIALLY_PRESENT outside a
// differencing disk or without a sector bitmap, blocks past the end of the file, blocks overlapping each
// other or the header section, log or regions, blocks past the largest VHDX file (kMaxFileSize). At most 20
// sentences, then a count. Empty: the BAT is sound.
std::vector<std::string> bat_problems(const BatGeometry& g, const BatTable& bat, const FileLayout& layout);

}  // namespace vhdkit::vhdx
