// SPDX-License-Identifier: Apache-2.0
// LVM2's text metadata (the format of lib/format_text, as `vgcfgbackup` writes it): sections `name { ... }`
// holding `key = value` with integers, "strings" and [arrays], and `#` comments. The text is untrusted: its
// size, nesting, counts and numbers are bounded and checked, and anything we do not understand fails the
// parse (the caller keeps the PV whole).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vhdkit::fs::detail::lvm {

// What we need of a volume group's metadata.
struct PvInfo {
  std::string name;       // the section name ("pv0"), as segments cite it
  std::string id;         // the PV's UUID, dashes removed (as the label stores it)
  uint64_t pe_start = 0;  // sectors of 512 bytes
  uint64_t pe_count = 0;
};
struct Segment {
  uint64_t start_extent = 0;  // in the LV
  uint64_t extent_count = 0;
  std::string type;           // "striped", "thin-pool", "raid1", ...
  uint64_t stripe_count = 0;  // for striped
  std::string pv;             // for a one-stripe segment: the PV section name
  uint64_t pv_extent = 0;     // and the first physical extent there
};
struct LvInfo {
  std::string name;
  std::vector<Segment> segments;
};
struct VgInfo {
  std::string name;
  uint64_t seqno = 0;
  uint64_t extent_size = 0;  // sectors of 512 bytes
  std::vector<PvInfo> pvs;
  std::vector<LvInfo> lvs;
};

// Parses one copy of the metadata text. The error says what was not understood.
struct Parsed {
  std::optional<VgInfo> vg;
  std::string error;
};
Parsed parse_metadata(std::string_view text);

}  // namespace vhdkit::fs::detail::lvm
