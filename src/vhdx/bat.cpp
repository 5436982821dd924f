#include "vhdx/bat.h"

#include <fmt/format.h>

#include <algorithm>

namespace vhdkit::vhdx {

BatGeometry BatGeometry::make(uint64_t virtual_size, uint32_t block_size, uint32_t logical_sector_size,
                              bool differencing) {
  BatGeometry g;
  g.virtual_size = virtual_size;
  g.block_size = block_size;
  g.logical_sector_size = logical_sector_size;
  g.differencing = differencing;
  g.chunk_ratio = (uint64_t{1} << 23) * logical_sector_size / block_size;
  g.payload_blocks = div_round_up(virtual_size, block_size);
  g.bitmap_blocks = div_round_up(g.payload_blocks, g.chunk_ratio);
  // 2.5.1: a differencing disk needs every sector bitmap entry; otherwise the BAT may end after the last
  // payload entry.
  g.total_entries = differencing ? g.bitmap_blocks * (g.chunk_ratio + 1)
                                 : g.payload_blocks + (g.payload_blocks - 1) / g.chunk_ratio;
  return g;
}

std::vector<std::string> bat_problems(const BatGeometry& g, std::span<const uint64_t> bat, const FileLayout& layout) {
  std::vector<std::string> problems;
  struct Used {
    uint64_t offset, length;
    std::string what;
  };
  std::vector<Used> used;
  for (auto [offset, length] : layout.reserved) used.push_back({offset, length, ""});

  auto place = [&](uint64_t index, uint64_t offset, uint64_t length, const char* kind) {
    std::string what = fmt::format("BAT entry {} ({} block at offset {})", index, kind, offset);
    if (offset < kHeaderSectionSize) {
      problems.push_back(fmt::format("{} points into the header section", what));
      return;
    }
    if (offset + length > layout.file_size) {
      problems.push_back(fmt::format("BAT entry {} points past the end of the file ({} block of {} bytes at offset {}, "
                                     "the file is {} bytes)",
                                     index, kind, length, offset, layout.file_size));
      return;
    }
    used.push_back({offset, length, what});
  };

  for (uint64_t chunk = 0; chunk < g.bitmap_blocks; ++chunk) {
    uint64_t first = chunk * g.chunk_ratio;
    uint64_t last = std::min(g.payload_blocks, first + g.chunk_ratio);
    bool needs_bitmap = false;
    for (uint64_t block = first; block < last; ++block) {
      uint64_t index = g.payload_index(block);
      if (index >= bat.size()) break;
      uint8_t state = bat_state(bat[index]);
      if (!is_known_payload_state(state)) {
        problems.push_back(fmt::format("BAT entry {} (payload block {}) has the reserved state value {}", index, block,
                                       state));
        continue;
      }
      if (state == static_cast<uint8_t>(PayloadState::PartiallyPresent)) {
        if (!g.differencing) {
          problems.push_back(fmt::format("BAT entry {} (payload block {}) is PARTIALLY_PRESENT in a disk without a "
                                         "parent",
                                         index, block));
          continue;
        }
        needs_bitmap = true;
      }
      bool has_space = state == static_cast<uint8_t>(PayloadState::FullyPresent) ||
                       state == static_cast<uint8_t>(PayloadState::PartiallyPresent) ||
                       (g.leave_block_allocated && bat_file_offset(bat[index]) != 0);
      if (has_space) place(index, bat_file_offset(bat[index]), g.block_size, "payload");
    }
    uint64_t bindex = g.bitmap_index(chunk);
    if (bindex >= bat.size()) {
      if (needs_bitmap)
        problems.push_back(fmt::format("chunk {} has PARTIALLY_PRESENT blocks but no sector bitmap entry", chunk));
      continue;
    }
    uint8_t bstate = bat_state(bat[bindex]);
    if (bstate == static_cast<uint8_t>(BitmapState::Present)) {
      place(bindex, bat_file_offset(bat[bindex]), kSectorBitmapBlockSize, "sector bitmap");
    } else if (bstate != static_cast<uint8_t>(BitmapState::NotPresent)) {
      problems.push_back(fmt::format("BAT entry {} (sector bitmap of chunk {}) has the invalid state value {}", bindex,
                                     chunk, bstate));
    } else if (needs_bitmap) {
      problems.push_back(fmt::format("BAT entry {} (sector bitmap of chunk {}) is NOT_PRESENT, but the chunk has "
                                     "PARTIALLY_PRESENT blocks",
                                     bindex, chunk));
    }
  }

  std::sort(used.begin(), used.end(), [](const Used& a, const Used& b) { return a.offset < b.offset; });
  size_t reach = 0;  // the span seen so far that ends furthest
  for (size_t i = 1; i < used.size(); ++i) {
    const Used& prev = used[reach];
    const Used& cur = used[i];
    if (cur.offset + cur.length > prev.offset + prev.length) reach = i;
    if (cur.offset >= prev.offset + prev.length) continue;
    if (prev.what.empty() && cur.what.empty()) continue;  // reserved areas are checked with the region table
    const Used& block = cur.what.empty() ? prev : cur;
    const Used& other = cur.what.empty() ? cur : prev;
    problems.push_back(fmt::format("{} overlaps {}", block.what,
                                   other.what.empty() ? fmt::format("the VHDX structures at offset {}", other.offset)
                                                      : other.what));
  }
  return problems;
}

}  // namespace vhdkit::vhdx
