// SPDX-License-Identifier: Apache-2.0
#include "cli/map_svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "cli/sizes.h"
#include "fs/usage_map.h"
#include "image/open_image.h"
#include "io/atomic_output.h"

namespace vhdkit::cli {
namespace {

// Above this many blocks a cell stands for several (a power of two of them), so that the picture's memory
// stays bounded: 4 Mi cells is one byte each.
constexpr uint64_t kMaxCells = uint64_t{1} << 22;
// Cells a fixed disk or a raw image is cut into when it has no blocks of its own.
constexpr uint64_t kDefaultCell = 2 * 1024 * 1024;

constexpr std::array<const char*, kCellStates> kColours = {"#1f5fbf", "#f0a020", "#a8d8a8", "#f4f4f4", "#9a6fc8"};
constexpr std::array<const char*, kCellStates> kLabels = {"data", "data no file system uses", "zero (allocated)",
                                                          "unallocated", "read from the parent"};

// What a cell shows when its block holds several kinds of extent: the one that costs space wins.
int rank(CellState s) {
  switch (s) {
    case CellState::Data: return 4;
    case CellState::Parent: return 3;
    case CellState::Zero: return 2;
    case CellState::Unused: return 1;
    case CellState::Unallocated: return 0;
  }
  return 0;
}

CellState state_of(const disk::MapExtent& e) {
  if (e.data) return e.depth > 0 ? CellState::Parent : CellState::Data;
  if (!e.present) return CellState::Unallocated;
  return e.zero ? CellState::Zero : CellState::Unallocated;
}

struct Layout {
  uint64_t columns = 64;
  unsigned px = 10;
};

Layout layout_for(uint64_t cells) {
  if (cells <= 4096) return {64, 10};
  if (cells <= 65536) return {256, 4};
  return {1024, 1};
}

std::string escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// One run of equal cells as at most three rectangles: the rest of its first row, the whole rows, the start of
// its last row. data-cells says how many cells each covers (the test counts them).
void draw_run(std::string& svg, const Layout& l, CellState s, uint64_t first, uint64_t count) {
  auto rect = [&](uint64_t row, uint64_t col, uint64_t width, uint64_t rows) {
    svg += fmt::format("<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" data-cells=\"{}\"/>\n",
                       to_string(s), col * l.px, row * l.px, width * l.px, rows * l.px, width * rows);
  };
  uint64_t end = first + count;
  uint64_t row = first / l.columns, col = first % l.columns;
  if (col) {
    uint64_t n = std::min(l.columns - col, count);
    rect(row, col, n, 1);
    first += n;
    ++row;
  }
  if (first >= end) return;
  uint64_t whole = (end - first) / l.columns;
  if (whole) {
    rect(row, 0, l.columns, whole);
    first += whole * l.columns;
    row += whole;
  }
  if (first < end) rect(row, 0, end - first, 1);
}

}  // namespace

std::string_view to_string(CellState s) {
  switch (s) {
    case CellState::Data: return "data";
    case CellState::Unused: return "unused";
    case CellState::Zero: return "zero";
    case CellState::Unallocated: return "unallocated";
    case CellState::Parent: return "parent";
  }
  return "?";
}

Result<MapPicture> draw_map(disk::VirtualDisk& disk) {
  uint64_t size = disk.virtual_size();
  uint64_t cell = disk.info().block_size ? disk.info().block_size : kDefaultCell;
  while (size / cell >= kMaxCells) cell *= 2;
  uint64_t cells = size ? (size - 1) / cell + 1 : 0;
  VHDKIT_ASSIGN(auto extents, disk.map());
  std::vector<CellState> state(cells, CellState::Unallocated);
  std::vector<bool> touched(cells, false);
  for (const auto& e : extents) {
    if (e.length == 0 || e.start >= size) continue;
    CellState s = state_of(e);
    uint64_t last = (std::min(e.start + e.length, size) - 1) / cell;
    for (uint64_t c = e.start / cell; c <= last; ++c) {
      if (!touched[c] || rank(s) > rank(state[c])) state[c] = s;
      touched[c] = true;
    }
  }
  // Data the guest's file systems do not use: what Full and Quick would give back.
  auto usage = fs::map_usage(disk);
  std::vector<fs::Volume> volumes;
  if (usage) {
    volumes = usage->volumes;
    if (usage->any_filesystem_read) {
      const auto& used = usage->used;
      for (uint64_t c = 0; c < cells; ++c) {
        if (state[c] != CellState::Data) continue;
        uint64_t begin = c * cell, end = std::min(begin + cell, size);
        auto it = std::upper_bound(used.begin(), used.end(), begin,
                                   [](uint64_t v, const fs::ByteRange& r) { return v < r.end(); });
        if (it == used.end() || it->offset >= end) state[c] = CellState::Unused;
      }
    }
  }

  MapPicture pic;
  pic.cell_size = cell;
  Layout l = layout_for(cells);
  uint64_t rows = cells ? (cells - 1) / l.columns + 1 : 0;
  uint64_t grid_w = l.columns * l.px, grid_h = rows * l.px;
  uint64_t strip_y = grid_h + 10, strip_h = 24, legend_y = strip_y + strip_h + 20;
  uint64_t width = std::max<uint64_t>(grid_w, 420), height = legend_y + kCellStates * 18 + 30;
  std::string& svg = pic.svg;
  svg += fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\">\n",
                     width, height, width, height);
  svg += fmt::format("<title>{}: {} in cells of {}</title>\n", escape(disk.path()), escape(human_size(size)),
                     escape(human_size(cell)));
  svg += "<style>text{font:12px sans-serif}";
  for (size_t s = 0; s < kCellStates; ++s)
    svg += fmt::format(".{}{{fill:{}}}", to_string(static_cast<CellState>(s)), kColours[s]);
  svg += "</style>\n<g id=\"cells\">\n";
  for (uint64_t c = 0; c < cells;) {
    uint64_t end = c;
    while (end < cells && state[end] == state[c]) ++end;
    pic.cells[static_cast<size_t>(state[c])] += end - c;
    draw_run(svg, l, state[c], c, end - c);
    c = end;
  }
  svg += "</g>\n<g id=\"partitions\">\n";
  svg += fmt::format("<rect x=\"0\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n", strip_y,
                     grid_w, strip_h);
  for (const auto& v : volumes) {
    if (!size) break;
    double x = static_cast<double>(v.offset) / static_cast<double>(size) * static_cast<double>(grid_w);
    double w = std::max(1.0, static_cast<double>(v.size) / static_cast<double>(size) * static_cast<double>(grid_w));
    std::string label = v.filesystem.empty() ? v.type : fmt::format("{} ({})", v.filesystem, v.type);
    svg += fmt::format(
        "<rect class=\"partition\" x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"#ddd\" stroke=\"#333\">"
        "<title>{} at {}, {}</title></rect>\n",
        x, strip_y, w, strip_h, escape(label), v.offset, escape(human_size(v.size)));
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\">{}</text>\n", x + 3, strip_y + 16, escape(label));
  }
  svg += "</g>\n<g id=\"legend\">\n";
  for (size_t s = 0; s < kCellStates; ++s) {
    uint64_t y = legend_y + s * 18;
    svg +=
        fmt::format("<rect x=\"0\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\" stroke=\"#333\"/>", y, kColours[s]);
    svg += fmt::format("<text x=\"18\" y=\"{}\">{}: {} cells</text>\n", y + 11, kLabels[s], pic.cells[s]);
  }
  svg += fmt::format("<text x=\"0\" y=\"{}\">one cell = {} of the virtual disk; partitions above</text>\n",
                     legend_y + kCellStates * 18 + 14, escape(human_size(cell)));
  svg += "</g>\n</svg>\n";
  return pic;
}

Status write_map_svg(disk::VirtualDisk& disk, const std::string& svg_path) {
  VHDKIT_ASSIGN(auto pic, draw_map(disk));
  return io::write_atomically(io::Env::posix(), svg_path,
                              [&](io::File& f) { return f.write_at(0, std::as_bytes(std::span(pic.svg))); });
}

Status write_map_svg(io::Env& env, const std::string& image_path, const std::string& svg_path) {
  disk::OpenOptions o;
  o.parents = disk::ParentPolicy::Optional;
  VHDKIT_ASSIGN(auto opened, image::open_image(env, image_path, o));
  return write_map_svg(*opened, svg_path);
}

}  // namespace vhdkit::cli
