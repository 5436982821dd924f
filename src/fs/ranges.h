// SPDX-License-Identifier: Apache-2.0
// Byte-range arithmetic shared by the readers: clamping, sorting and merging.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/checked.h"
#include "fs/usage_map.h"

namespace vhdkit::fs::detail {

// Overflow-safe arithmetic (checked_add, checked_mul, range_end) is core/checked.h's, as in every parser.
using vhdkit::checked_add;
using vhdkit::checked_mul;

// Sorts and merges overlapping or touching ranges; drops empty ones.
std::vector<ByteRange> merge_ranges(std::vector<ByteRange> ranges);
// The part of `r` inside [lo, hi) (length 0 when none).
ByteRange clamp_range(ByteRange r, uint64_t lo, uint64_t hi);
// Joins neighbours of the sorted, disjoint `ranges` whose gap is shorter than `min_gap` (the gap becomes
// used: only ever more is used, never less).
void coalesce_gaps(std::vector<ByteRange>& ranges, uint64_t min_gap);
// Bytes of [lo, hi) covered by the merged ranges `merged`.
uint64_t covered_bytes(const std::vector<ByteRange>& merged, uint64_t lo, uint64_t hi);

}  // namespace vhdkit::fs::detail
