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
  // Word-at-a-time scan: this is the hot loop of the zero scan.
  const std::byte* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    if (w != 0) return false;
    p += 8;
    n -= 8;
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
