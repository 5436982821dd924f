// SPDX-License-Identifier: Apache-2.0
// Used byte ranges built in disk order by readers that walk free-space structures (XFS, LVM): a hostile or
// badly fragmented file system could alternate used and free blocks without end, so past a bound short free
// gaps become used (the shortest kept gap doubling each time) and memory stays bounded. Only ever more is
// used, never less.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fs/usage_map.h"

namespace vhdkit::fs::detail {

class UsedRuns {
 public:
  // `unit`: the first gap length coalesced once the bound is reached (a block).
  explicit UsedRuns(uint64_t unit, size_t max_runs = size_t{1} << 21) : unit_(unit), max_runs_(max_runs) {}

  // Appends a used range starting at or after the end of the previous one.
  void add(ByteRange r);
  // Is every byte of [offset, offset + length) used?
  bool covers(uint64_t offset, uint64_t length) const;
  // Non-zero once short free gaps were counted as used: the shortest gap kept.
  uint64_t min_gap() const { return min_gap_; }
  const std::vector<ByteRange>& runs() const { return runs_; }
  std::vector<ByteRange> take() { return std::move(runs_); }

 private:
  uint64_t unit_;
  size_t max_runs_;
  uint64_t min_gap_ = 0;
  std::vector<ByteRange> runs_;
};

}  // namespace vhdkit::fs::detail
