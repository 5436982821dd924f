// SPDX-License-Identifier: Apache-2.0
// A 16-byte identifier as stored on disk. VHD stores its UUIDs as raw big-endian bytes; VHDX stores GUIDs
// in Microsoft's mixed-endian layout (first three fields little-endian). Text forms differ accordingly.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace vhdkit {

struct Guid {
  std::array<std::byte, 16> bytes{};

  bool is_zero() const;
  bool operator==(const Guid&) const = default;

  static Guid random();  // version 4
  // Text in canonical 8-4-4-4-12 form reading the bytes in order (VHD's convention).
  std::string to_string_be() const;
  // Text as Windows prints a GUID stored in its mixed-endian layout (VHDX's convention).
  std::string to_string_ms() const;
  static std::optional<Guid> parse_ms(std::string_view text);  // accepts optional braces
};

// The 16 bytes as stored on disk, in the order they are stored (both formats keep them so; only the text
// forms above differ).
Guid load_guid(const std::byte* p);
void store_guid(std::byte* p, const Guid& g);

}  // namespace vhdkit
