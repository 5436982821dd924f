// SPDX-License-Identifier: Apache-2.0
#include "fs/ranges.h"

#include <algorithm>

namespace vhdkit::fs::detail {

std::vector<ByteRange> merge_ranges(std::vector<ByteRange> ranges) {
  std::erase_if(ranges, [](const ByteRange& r) { return r.length == 0; });
  std::sort(ranges.begin(), ranges.end(), [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> out;
  out.reserve(ranges.size());
  for (const ByteRange& r : ranges) {
    // Callers clamp to the disk first, so offset + length cannot overflow here.
    if (!out.empty() && r.offset <= out.back().end()) {
      out.back().length = std::max(out.back().end(), r.end()) - out.back().offset;
    } else {
      out.push_back(r);
    }
  }
  return out;
}

ByteRange clamp_range(ByteRange r, uint64_t lo, uint64_t hi) {
  uint64_t end = checked_add(r.offset, r.length).value_or(UINT64_MAX);
  uint64_t a = std::max(r.offset, lo), b = std::min(end, hi);
  if (a >= b) return {lo, 0};
  return {a, b - a};
}

void coalesce_gaps(std::vector<ByteRange>& ranges, uint64_t min_gap) {
  size_t out = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (out > 0 && ranges[i].offset - ranges[out - 1].end() < min_gap) {
      ranges[out - 1].length = ranges[i].end() - ranges[out - 1].offset;
    } else {
      ranges[out++] = ranges[i];
    }
  }
  ranges.resize(out);
}

uint64_t covered_bytes(const std::vector<ByteRange>& merged, uint64_t lo, uint64_t hi) {
  auto it =
      std::upper_bound(merged.begin(), merged.end(), lo, [](uint64_t v, const ByteRange& r) { return v < r.end(); });
  uint64_t n = 0;
  for (; it != merged.end() && it->offset < hi; ++it) n += clamp_range(*it, lo, hi).length;
  return n;
}

}  // namespace vhdkit::fs::detail
