// SPDX-License-Identifier: Apache-2.0
#include "image/compare.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace vhdkit::image {

using disk::MapExtent;
namespace {

// Large reads keep the cost per byte low; two buffers of this size are all the memory a comparison takes.
constexpr uint64_t kChunk = 4 << 20;

// Where one disk is known to read as zero without reading it, over [0, total): its map's zero extents,
// plus everything past its end (a shorter disk's tail counts as zeros).
class ZeroRanges {
 public:
  ZeroRanges(const std::vector<MapExtent>& map, uint64_t size, uint64_t total) {
    for (const auto& e : map)
      if (e.zero) add(e.start, std::min(e.start + e.length, size));
    add(size, total);
  }

  // Is `at` inside a zero range? Either way, how far the answer holds (at most `limit`).
  std::pair<bool, uint64_t> at(uint64_t at, uint64_t limit) const {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), at,
                               [](uint64_t x, const std::pair<uint64_t, uint64_t>& r) { return x < r.second; });
    if (it != ranges_.end() && it->first <= at) return {true, std::min(it->second, limit)};
    return {false, it == ranges_.end() ? limit : std::min(it->first, limit)};
  }

 private:
  void add(uint64_t start, uint64_t end) {
    if (start >= end) return;
    if (!ranges_.empty() && ranges_.back().second >= start)
      ranges_.back().second = std::max(ranges_.back().second, end);
    else
      ranges_.emplace_back(start, end);
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;  // sorted, disjoint [start, end)
};

std::optional<size_t> first_nonzero(std::span<const std::byte> buf) {
  auto it = std::find_if(buf.begin(), buf.end(), [](std::byte b) { return b != std::byte{0}; });
  if (it == buf.end()) return std::nullopt;
  return static_cast<size_t>(it - buf.begin());
}

std::optional<size_t> first_mismatch(std::span<const std::byte> a, std::span<const std::byte> b) {
  if (std::memcmp(a.data(), b.data(), a.size()) == 0) return std::nullopt;
  auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin());
  return static_cast<size_t>(ia - a.begin());
}

}  // namespace

Result<Comparison> compare_contents(VirtualDisk& a, VirtualDisk& b, SizeRule rule) {
  Comparison result;
  const uint64_t size_a = a.virtual_size(), size_b = b.virtual_size();
  result.sizes_differ = size_a != size_b;
  if (result.sizes_differ && rule == SizeRule::Strict) {
    result.equal = false;
    result.first_difference = std::min(size_a, size_b);
    return result;
  }
  const uint64_t total = std::max(size_a, size_b);
  VHDKIT_ASSIGN(auto map_a, a.map());
  VHDKIT_ASSIGN(auto map_b, b.map());
  const ZeroRanges zero_a(map_a, size_a, total), zero_b(map_b, size_b, total);

  std::vector<std::byte> buf_a(kChunk), buf_b(kChunk);
  uint64_t pos = 0;
  while (pos < total) {
    auto [a_zero, a_end] = zero_a.at(pos, total);
    auto [b_zero, b_end] = zero_b.at(pos, total);
    const uint64_t end = std::min(a_end, b_end);
    if (a_zero && b_zero) {
      pos = end;
      continue;
    }
    const size_t len = static_cast<size_t>(std::min(end - pos, kChunk));
    std::span<std::byte> sa(buf_a.data(), len), sb(buf_b.data(), len);
    std::optional<size_t> diff;
    if (a_zero) {
      VHDKIT_TRY(b.read(pos, sb));
      diff = first_nonzero(sb);
    } else if (b_zero) {
      VHDKIT_TRY(a.read(pos, sa));
      diff = first_nonzero(sa);
    } else {
      VHDKIT_TRY(a.read(pos, sa));
      VHDKIT_TRY(b.read(pos, sb));
      diff = first_mismatch(sa, sb);
    }
    if (diff) {
      result.equal = false;
      result.first_difference = pos + *diff;
      return result;
    }
    pos += len;
  }
  return result;
}

}  // namespace vhdkit::image
