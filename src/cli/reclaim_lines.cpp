// SPDX-License-Identifier: Apache-2.0
#include "cli/reclaim_lines.h"

#include <fmt/format.h>

#include "cli/sizes.h"

namespace vhdkit::cli {
namespace {

std::string volume_line(const compact::VolumeReport& v) {
  std::string where =
      v.table == "none" ? std::string("bare disk") : fmt::format("{} at {}", v.table, human_size(v.offset));
  std::string what = v.filesystem.empty() ? v.type : fmt::format("{}, {}", v.type, v.filesystem);
  std::string state = v.state == "read"
                          ? fmt::format("{} used, {} free", human_size(v.used_bytes), human_size(v.free_bytes))
                          : fmt::format("kept whole: {}", v.reason);
  return fmt::format("  {} ({}, {}): {}", where, human_size(v.size), what, state);
}

// "Full 12 blocks (24 MiB), Quick 10 blocks (20 MiB)": the modes this run counted (a dry run counts all).
std::string releases(const compact::Report& r) {
  std::string out;
  for (auto [name, blocks] : {std::pair{"Full", r.releases.full}, std::pair{"Quick", r.releases.quick},
                              std::pair{"Prezeroed", r.releases.prezeroed}}) {
    if (!blocks) continue;
    out += fmt::format("{}{} {} block{} ({})", out.empty() ? "" : ", ", name, *blocks, *blocks == 1 ? "" : "s",
                       human_size(*blocks * r.block_size));
  }
  return out;
}

}  // namespace

std::vector<std::string> reclaim_lines(const compact::Report& r) {
  std::vector<std::string> out;
  if (!r.volumes.empty()) out.push_back("volumes:");
  for (const compact::VolumeReport& v : r.volumes) out.push_back(volume_line(v));
  if (std::string modes = releases(r); !modes.empty())
    out.push_back(fmt::format("releases by mode: {} (blocks of {})", modes, human_size(r.block_size)));
  if (!r.gain_note.empty()) out.push_back("Note: " + r.gain_note);
  return out;
}

}  // namespace vhdkit::cli
