// SPDX-License-Identifier: Apache-2.0
// The allocation map as a picture (`vhdkit map --svg`, `compact --svg-before/--svg-after`): one cell per
// block, coloured by what it holds (data, data no file system uses, zero, unallocated, read from the parent),
// the partitions drawn as a strip beneath, and a legend with the count of each. Runs of equal cells are
// drawn as one rectangle per row span, so a 64 TiB disk stays a small file.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "io/file.h"

namespace vhdkit::cli {

enum class CellState : uint8_t { Data, Unused, Zero, Unallocated, Parent };
inline constexpr size_t kCellStates = 5;
std::string_view to_string(CellState s);  // "data", "unused", "zero", "unallocated", "parent"

struct MapPicture {
  std::string svg;
  uint64_t cell_size = 0;  // bytes of the virtual disk per cell (the block size, unless the disk has very many)
  std::array<uint64_t, kCellStates> cells{};  // cells of each state
};

Result<MapPicture> draw_map(disk::VirtualDisk& disk);

// Opens the image read-only (parents when they are found), draws it and writes the SVG (a whole new file).
Status write_map_svg(io::Env& env, const std::string& image_path, const std::string& svg_path);
Status write_map_svg(disk::VirtualDisk& disk, const std::string& svg_path);

}  // namespace vhdkit::cli
