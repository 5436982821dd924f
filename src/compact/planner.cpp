#include "compact/planner.h"

#include <algorithm>

#include "core/bytes.h"

namespace vhdkit::compact {
namespace {

// Byte ranges occupied before compaction by metadata and kept blocks, sorted and merged.
std::vector<Extent> occupied_extents(const PlanInput& in, const std::vector<Slot>& kept) {
  std::vector<Extent> used = in.fixed;
  for (const Slot& s : kept) used.push_back({s.offset, in.slot_size});
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
  size_t first = 0;  // gaps before this one cannot hold a slot (they only ever shrink)
  auto fits = [&](const Extent& g) { return round_up(g.offset, align) + in.slot_size <= g.end(); };

  uint64_t end = 0;
  for (const Extent& f : in.fixed) end = std::max(end, f.end());
  bool moving = true;
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
    Slot& s = *it;
    if (moving) {
      while (first < gaps.size() && !fits(gaps[first])) ++first;
      uint64_t to = first < gaps.size() ? round_up(gaps[first].offset, align) : s.offset;
      if (first < gaps.size() && to + in.slot_size <= s.offset) {
        plan.moves.push_back({s.block, s.offset, to});
        Extent& g = gaps[first];
        g.length = g.end() - (to + in.slot_size);
        g.offset = to + in.slot_size;
        end = std::max(end, to + in.slot_size);
        continue;
      }
      moving = false;  // no hole below this block, so none below any lower block either
    }
    end = std::max(end, s.offset + in.slot_size);
  }
  plan.new_file_size = std::min(end + in.trailer_size, in.file_size);
  return plan;
}

}  // namespace vhdkit::compact
