// SPDX-License-Identifier: Apache-2.0
#include "compact/planner.h"

#include <algorithm>
#include <map>

#include "core/bytes.h"

namespace vhdkit::compact {
namespace {

// Byte ranges occupied before compaction by metadata and kept blocks, sorted and merged.
std::vector<Extent> occupied_extents(const PlanInput& in, const std::vector<Slot>& kept) {
  std::vector<Extent> used = in.fixed;
  for (const Slot& s : kept) used.push_back({s.offset, s.length});
  std::sort(used.begin(), used.end(), [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
  std::vector<Extent> merged;
  for (const Extent& e : used) {
    if (e.length == 0) continue;
    if (!merged.empty() && e.offset <= merged.back().end()) {
      merged.back().length = std::max(merged.back().end(), e.end()) - merged.back().offset;
    } else {
      merged.push_back(e);
    }
  }
  return merged;
}

// The free gaps between occupied extents, from offset 0 up to the start of the last occupied extent.
std::vector<Extent> gaps_between(const std::vector<Extent>& used) {
  std::vector<Extent> gaps;
  uint64_t cursor = 0;
  for (const Extent& e : used) {
    if (e.offset > cursor) gaps.push_back({cursor, e.offset - cursor});
    cursor = std::max(cursor, e.end());
  }
  return gaps;
}

}  // namespace

uint64_t slot_alignment(const std::vector<Slot>& slots) {
  uint64_t align = 4096;
  for (const Slot& s : slots) {
    while (align > 512 && s.offset % align != 0) align /= 2;
  }
  return align;
}

Plan make_plan(const PlanInput& in) {
  Plan plan;
  std::vector<Slot> kept;
  for (const Slot& s : in.slots) {
    (s.verdict == Verdict::Release ? plan.releases : kept).push_back(s);
  }
  auto by_offset = [](const Slot& a, const Slot& b) { return a.offset < b.offset; };
  std::sort(plan.releases.begin(), plan.releases.end(), by_offset);
  std::sort(kept.begin(), kept.end(), by_offset);
  plan.blocks_kept = kept.size();

  const uint64_t align = std::max<uint64_t>(in.alignment, 1);
  std::vector<Extent> gaps = gaps_between(occupied_extents(in, kept));
  // Per slot length, the gaps before this index cannot hold such a slot (gaps only ever shrink).
  std::map<uint64_t, size_t> first_fit;
  auto lowest_gap_for = [&](uint64_t length) {
    size_t& first = first_fit[length];
    while (first < gaps.size() && round_up(gaps[first].offset, align) + length > gaps[first].end()) ++first;
    return first;
  };

  uint64_t end = 0;
  for (const Extent& f : in.fixed) end = std::max(end, f.end());
  bool moving = true;
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
    const Slot& s = *it;
    if (moving) {
      size_t g = lowest_gap_for(s.length);
      uint64_t to = g < gaps.size() ? round_up(gaps[g].offset, align) : s.offset;
      if (g < gaps.size() && to + s.length <= s.offset) {
        plan.moves.push_back({s.block, s.offset, to, s.length});
        Extent& gap = gaps[g];
        gap.length = gap.end() - (to + s.length);
        gap.offset = to + s.length;
        end = std::max(end, to + s.length);
        continue;
      }
      moving = false;  // the end of the file stays at or above this block: moving lower ones gains nothing
    }
    end = std::max(end, s.end());
  }
  plan.new_file_size = std::min(end + in.trailer_size, in.file_size);
  return plan;
}

}  // namespace vhdkit::compact
