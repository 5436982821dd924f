// SPDX-License-Identifier: Apache-2.0
#include "fs/used_runs.h"

#include <algorithm>

#include "fs/ranges.h"

namespace vhdkit::fs::detail {

void UsedRuns::add(ByteRange r) {
  if (r.length == 0) return;
  if (!runs_.empty() && (r.offset <= runs_.back().end() || r.offset - runs_.back().end() < min_gap_)) {
    runs_.back().length = std::max(runs_.back().end(), r.end()) - runs_.back().offset;
  } else {
    runs_.push_back(r);
  }
  if (runs_.size() > max_runs_) {
    min_gap_ = min_gap_ ? min_gap_ * 2 : std::max<uint64_t>(unit_, 1) * 2;
    coalesce_gaps(runs_, min_gap_);
  }
}

bool UsedRuns::covers(uint64_t offset, uint64_t length) const {
  if (length == 0) return true;
  // The last run starting at or before `offset`.
  auto it =
      std::upper_bound(runs_.begin(), runs_.end(), offset, [](uint64_t o, const ByteRange& r) { return o < r.offset; });
  if (it == runs_.begin()) return false;
  --it;
  return it->offset <= offset && it->end() >= offset + length;
}

}  // namespace vhdkit::fs::detail
