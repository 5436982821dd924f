// SPDX-License-Identifier: Apache-2.0
#include "vhdx/bat.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

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

namespace {

// Which 1 MiB units of the file are taken. Every block, sector bitmap block and structure of a VHDX starts on
// a 1 MiB boundary and is a whole number of MiB long, so one bit a unit finds every overlap without a list of
// the blocks (a 64 TiB file: 8 MiB of bits).
class UnitMap {
 public:
  explicit UnitMap(uint64_t units) : words_(div_round_up(units, 64)) {}
  bool test(uint64_t u) const { return words_[u / 64] >> (u % 64) & 1; }
  void set(uint64_t first, uint64_t n) {
    for (uint64_t u = first; u < first + n; ++u) words_[u / 64] |= uint64_t{1} << (u % 64);
  }
  std::optional<uint64_t> first_taken(uint64_t first, uint64_t n) const {
    for (uint64_t u = first; u < first + n; ++u)
      if (test(u)) return u;
    return std::nullopt;
  }

 private:
  std::vector<uint64_t> words_;
};

struct Placed {
  uint64_t index;  // BAT index
  uint64_t offset, length;
  const char* kind;  // "payload", "sector bitmap"
};

std::string describe(const Placed& b) {
  return fmt::format("BAT entry {} ({} block at offset {})", b.index, b.kind, b.offset);
}

// Walks the BAT in chunk order, reporting every problem of a single entry (state, place) to `problem` and
// every block that holds file space and lies inside the file to `block`.
template <typename Problem, typename Block>
void walk(const BatGeometry& g, const BatTable& bat, uint64_t file_size, Problem&& problem, Block&& block) {
  auto place = [&](uint64_t index, uint64_t offset, uint64_t length, const char* kind) {
    Placed b{index, offset, length, kind};
    if (!range_end(offset, length)) {
      problem([&] { return fmt::format("BAT entry {}: {} block at 0x{:x} overflows 64 bits", index, kind, offset); });
    } else if (offset < kHeaderSectionSize) {
      problem([&] { return fmt::format("{} points into the header section", describe(b)); });
    } else if (!fits_within(offset, length, file_size)) {
      problem([&] {
        return fmt::format(
            "BAT entry {} points past the end of the file ({} block of {} bytes at offset {}, the file is {} bytes)",
            index, kind, length, offset, file_size);
      });
    } else if (!fits_within(offset, length, kMaxFileSize)) {
      problem([&] { return fmt::format("{} lies past the {} bytes any VHDX file needs", describe(b), kMaxFileSize); });
    } else {
      block(b);
    }
  };

  for (uint64_t chunk = 0; chunk < g.bitmap_blocks; ++chunk) {
    uint64_t first = chunk * g.chunk_ratio;
    uint64_t last = std::min(g.payload_blocks, first + g.chunk_ratio);
    bool needs_bitmap = false;
    for (uint64_t b = first; b < last; ++b) {
      uint64_t index = g.payload_index(b);
      if (index >= bat.size()) break;
      // A whole page of equal entries that name no file space and need no bitmap says nothing more than its
      // first entry: the rest of it is skipped (a 64 TiB table of absent blocks is walked by pages).
      if (b % BatTable::kPageEntries == 1 && last - b >= BatTable::kPageEntries - 1) {
        std::optional<uint64_t> v = bat.uniform_page(b);
        uint8_t st = v ? bat_state(*v) : 0;
        bool inert = v && is_known_payload_state(st) && !holds_data(st) &&
                     !(g.leave_block_allocated && bat_file_offset(*v) != 0);
        if (inert) {
          b += BatTable::kPageEntries - 2;
          continue;
        }
      }
      uint64_t entry = bat.payload(b);
      uint8_t state = bat_state(entry);
      if (!is_known_payload_state(state)) {
        problem([&] {
          return fmt::format("BAT entry {} (payload block {}) has the reserved state value {}", index, b, state);
        });
        continue;
      }
      if (state == static_cast<uint8_t>(PayloadState::PartiallyPresent)) {
        if (!g.differencing) {
          problem([&] {
            return fmt::format("BAT entry {} (payload block {}) is PARTIALLY_PRESENT in a disk without a parent", index,
                               b);
          });
          continue;
        }
        needs_bitmap = true;
      }
      bool has_space = holds_data(state) || (g.leave_block_allocated && bat_file_offset(entry) != 0);
      if (has_space) place(index, bat_file_offset(entry), g.block_size, "payload");
    }
    uint64_t bindex = g.bitmap_index(chunk);
    if (bindex >= bat.size()) {
      if (needs_bitmap)
        problem([&] { return fmt::format("chunk {} has PARTIALLY_PRESENT blocks but no sector bitmap entry", chunk); });
      continue;
    }
    uint8_t bstate = bat_state(bat.bitmap(chunk));
    if (bstate == static_cast<uint8_t>(BitmapState::Present)) {
      place(bindex, bat_file_offset(bat.bitmap(chunk)), kSectorBitmapBlockSize, "sector bitmap");
    } else if (bstate != static_cast<uint8_t>(BitmapState::NotPresent)) {
      problem([&] {
        return fmt::format("BAT entry {} (sector bitmap of chunk {}) has the invalid state value {}", bindex, chunk,
                           bstate);
      });
    } else if (needs_bitmap) {
      problem([&] {
        return fmt::format(
            "BAT entry {} (sector bitmap of chunk {}) is NOT_PRESENT, but the chunk has PARTIALLY_PRESENT blocks",
            bindex, chunk);
      });
    }
  }
}

}  // namespace

std::vector<std::string> bat_problems(const BatGeometry& g, const BatTable& bat, const FileLayout& layout) {
  // At most kShown sentences are made (a hostile BAT may have millions of bad entries), then a count.
  constexpr size_t kShown = 20;
  std::vector<std::string> problems;
  uint64_t more = 0;
  auto add_problem = [&](auto&& make_sentence) {
    if (problems.size() < kShown)
      problems.push_back(make_sentence());
    else
      ++more;
  };

  const uint64_t units = div_round_up(std::min(layout.file_size, kMaxFileSize), kAlignment);
  UnitMap taken(units), structures(units);
  for (auto [offset, length] : layout.reserved) {
    // Structures overlapping each other are the header section's concern (read_header_section).
    uint64_t first = std::min(offset / kAlignment, units);
    uint64_t end = std::min(div_round_up(saturating_end(offset, length), kAlignment), units);
    taken.set(first, end - first);
    structures.set(first, end - first);
  }
  struct Collision {
    Placed block;
    uint64_t unit;  // the first unit it shares
    std::optional<Placed> owner;
  };
  std::vector<Collision> collisions;
  bool blocks_collide = false;
  walk(g, bat, layout.file_size, add_problem, [&](const Placed& b) {
    uint64_t first = b.offset / kAlignment, n = div_round_up(b.length, kAlignment);
    if (auto u = taken.first_taken(first, n)) {
      if (collisions.size() + problems.size() < kShown) {
        collisions.push_back({b, *u, std::nullopt});
        blocks_collide = blocks_collide || !structures.test(*u);
      } else {
        ++more;
      }
      return;
    }
    taken.set(first, n);
  });
  if (blocks_collide) {
    // A second walk names the block each one collides with: the first other block that covers the shared unit.
    walk(
        g, bat, layout.file_size, [](auto&&) {},
        [&](const Placed& b) {
          for (Collision& c : collisions) {
            if (c.owner || b.index == c.block.index || structures.test(c.unit)) continue;
            bool collider = std::any_of(collisions.begin(), collisions.end(),
                                        [&](const Collision& o) { return o.block.index == b.index; });
            if (!collider && c.unit * kAlignment >= b.offset && c.unit * kAlignment < b.offset + b.length) c.owner = b;
          }
        });
  }
  for (const Collision& c : collisions) {
    std::string other;
    if (structures.test(c.unit)) {
      uint64_t at = c.unit * kAlignment;
      for (auto [offset, length] : layout.reserved)
        if (at >= offset && at - offset < length) at = offset;
      other = fmt::format("the VHDX structures at offset {}", at);
    } else {
      other = c.owner ? describe(*c.owner) : "another block";
    }
    problems.push_back(fmt::format("{} overlaps {}", describe(c.block), other));
  }
  if (more) problems.push_back(fmt::format("{} more BAT problems", more));
  return problems;
}

}  // namespace vhdkit::vhdx
