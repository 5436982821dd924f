// SPDX-License-Identifier: Apache-2.0
// Overflow-safe arithmetic for offsets and lengths read from a file. Every parser that adds or multiplies
// numbers it found on disk goes through these, so that a value near 2^64 cannot wrap a "past the end" test.
//
//   checked_add(a, b)          a + b, or nullopt when it wraps
//   checked_mul(a, b)          a * b, or nullopt when it wraps
//   range_end(offset, length)  offset + length (the end of a byte range), or nullopt
//   fits_within(o, n, limit)   [o, o + n) lies inside [0, limit)
//   lies_within(o, n, lo, hi)  [o, o + n) lies inside [lo, hi)
//   ranges_overlap(a, an, b, bn)  the two ranges share a byte (a range that wraps is taken to reach 2^64)
#pragma once

#include <cstdint>
#include <limits>
#include <optional>

namespace vhdkit {

constexpr std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

constexpr std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

constexpr std::optional<uint64_t> range_end(uint64_t offset, uint64_t length) { return checked_add(offset, length); }

// The end of a range, saturated at 2^64 - 1 (for sorting and overlap tests of ranges already known to wrap).
constexpr uint64_t saturating_end(uint64_t offset, uint64_t length) {
  return range_end(offset, length).value_or(std::numeric_limits<uint64_t>::max());
}

constexpr bool fits_within(uint64_t offset, uint64_t length, uint64_t limit) {
  return offset <= limit && length <= limit - offset;
}

constexpr bool lies_within(uint64_t offset, uint64_t length, uint64_t lo, uint64_t hi) {
  return offset >= lo && fits_within(offset, length, hi);
}

constexpr bool ranges_overlap(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len) {
  if (a_len == 0 || b_len == 0) return false;
  return a < saturating_end(b, b_len) && b < saturating_end(a, a_len);
}

}  // namespace vhdkit
