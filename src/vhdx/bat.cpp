// SPDX-License-Identifier: Apache-2.0
#include "vhdx/bat.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/checked.h"

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
  g.total_entries =
      differencing ? g.bitmap_blocks * (g.chunk_ratio + 1) : g.payload_blocks + (g.payload_blocks - 1) / g.chunk_ratio;
  return g;
}

std::vector<std::string> bat_problems(const BatGeometry& g, std::span<const uint64_t> bat, const FileLayout& layout) {
  // At most kShown sentences are kept (a hostile BAT may have millions of bad entries), then a count.
  constexpr size_t kShown = 20;
  std::vector<std::string> problems;
  uint64_t more = 0;
  auto add_problem = [&](std::string s) {
    if (problems.size() < kShown)
      problems.push_back(std::move(s));
    else
      ++more;
  };
  struct Used {
    uint64_t offset, length;
    uint64_t index;    // BAT index, or kReserved for the header section, log and regions
    const char* kind;  // "payload", "sector bitmap"
  };
  constexpr uint64_t kReserved = ~uint64_t{0};
  auto describe = [](const Used& u) {
    return fmt::format("BAT entry {} ({} block at offset {})", u.index, u.kind, u.offset);
  };
  std::vector<Used> used;
  for (auto [offset, length] : layout.reserved) used.push_back({offset, length, kReserved, ""});

  auto place = [&](uint64_t index, uint64_t offset, uint64_t length, const char* kind) {
    std::string what = describe({offset, length, index, kind});
    if (!range_end(offset, length)) {
      add_problem(fmt::format("BAT entry {}: {} block at 0x{:x} overflows 64 bits", index, kind, offset));
      return;
    }
    if (offset < kHeaderSectionSize) {
      add_problem(fmt::format("{} points into the header section", what));
      return;
    }
    if (!fits_within(offset, length, layout.file_size)) {
      add_problem(
          fmt::format("BAT entry {} points past the end of the file ({} block of {} bytes at offset {}, "
                      "the file is {} bytes)",
                      index, kind, length, offset, layout.file_size));
      return;
    }
    used.push_back({offset, length, index, kind});
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
        add_problem(
            fmt::format("BAT entry {} (payload block {}) has the reserved state value {}", index, block, state));
        continue;
      }
      if (state == static_cast<uint8_t>(PayloadState::PartiallyPresent)) {
        if (!g.differencing) {
          add_problem(
              fmt::format("BAT entry {} (payload block {}) is PARTIALLY_PRESENT in a disk without a "
                          "parent",
                          index, block));
          continue;
        }
        needs_bitmap = true;
      }
      bool has_space = holds_data(state) || (g.leave_block_allocated && bat_file_offset(bat[index]) != 0);
      if (has_space) place(index, bat_file_offset(bat[index]), g.block_size, "payload");
    }
    uint64_t bindex = g.bitmap_index(chunk);
    if (bindex >= bat.size()) {
      if (needs_bitmap)
        add_problem(fmt::format("chunk {} has PARTIALLY_PRESENT blocks but no sector bitmap entry", chunk));
      continue;
    }
    uint8_t bstate = bat_state(bat[bindex]);
    if (bstate == static_cast<uint8_t>(BitmapState::Present)) {
      place(bindex, bat_file_offset(bat[bindex]), kSectorBitmapBlockSize, "sector bitmap");
    } else if (bstate != static_cast<uint8_t>(BitmapState::NotPresent)) {
      add_problem(fmt::format("BAT entry {} (sector bitmap of chunk {}) has the invalid state value {}", bindex, chunk,
                              bstate));
    } else if (needs_bitmap) {
      add_problem(
          fmt::format("BAT entry {} (sector bitmap of chunk {}) is NOT_PRESENT, but the chunk has "
                      "PARTIALLY_PRESENT blocks",
                      bindex, chunk));
    }
  }

  std::sort(used.begin(), used.end(), [](const Used& a, const Used& b) { return a.offset < b.offset; });
  size_t reach = 0;  // the span seen so far that ends furthest
  for (size_t i = 1; i < used.size(); ++i) {
    const Used& prev = used[reach];
    const Used& cur = used[i];
    if (saturating_end(cur.offset, cur.length) > saturating_end(prev.offset, prev.length)) reach = i;
    if (cur.offset >= saturating_end(prev.offset, prev.length)) continue;
    if (prev.index == kReserved && cur.index == kReserved) continue;  // checked with the region table
    const Used& block = cur.index == kReserved ? prev : cur;
    const Used& other = cur.index == kReserved ? cur : prev;
    add_problem(fmt::format(
        "{} overlaps {}", describe(block),
        other.index == kReserved ? fmt::format("the VHDX structures at offset {}", other.offset) : describe(other)));
  }
  if (more) problems.push_back(fmt::format("{} more BAT problems", more));
  return problems;
}

}  // namespace vhdkit::vhdx
