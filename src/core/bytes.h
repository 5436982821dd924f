// SPDX-License-Identifier: Apache-2.0
// Endian-explicit loads and stores for on-disk structures. VHD is big-endian, VHDX little-endian; every
// struct parser goes through these so that no code reinterprets raw bytes as integers.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace vhdkit {

using Bytes = std::vector<std::byte>;

template <class T>
inline T load_be(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::little) v = std::byteswap(v);
  return v;
}
template <class T>
inline T load_le(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  return v;
}
template <class T>
inline void store_be(std::byte* p, T v) {
  if constexpr (std::endian::native == std::endian::little) v = std::byteswap(v);
  std::memcpy(p, &v, sizeof v);
}
template <class T>
inline void store_le(std::byte* p, T v) {
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  std::memcpy(p, &v, sizeof v);
}

inline bool all_zero(std::span<const std::byte> s) {
  // The hot loop of the zero scan: 64 bytes per step, OR-ed together so that the compiler can use vector
  // registers; a block with data usually stops at its first step.
  const std::byte* p = s.data();
  size_t n = s.size();
  while (n >= 64) {
    uint64_t w[8];
    std::memcpy(w, p, 64);
    if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0) return false;
    p += 64;
    n -= 64;
  }
  while (n--) {
    if (*p++ != std::byte{0}) return false;
  }
  return true;
}

constexpr bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }
constexpr uint64_t round_up(uint64_t v, uint64_t align) { return (v + align - 1) / align * align; }
constexpr uint64_t div_round_up(uint64_t v, uint64_t d) { return (v + d - 1) / d; }

}  // namespace vhdkit
