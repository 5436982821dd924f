// SPDX-License-Identifier: Apache-2.0
// Reading and validating the metadata of one VHD file (footer, its copy, dynamic header, BAT, parent
// locators), before anything else trusts it. The parent chain is not followed here (see vhd_image.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/file.h"
#include "vhd/vhd_format.h"

namespace vhdkit::vhd {

// Structural damage is reported with this code (the image file is not a usable VHD).
inline constexpr ReturnCode kCorrupt = ReturnCode::Failed;

// A named extent of the file holding metadata: blocks must not overlap any of these.
struct Region {
  uint64_t offset = 0;
  uint64_t length = 0;
  std::string name;  // "the footer copy", "the dynamic header", "the BAT", "parent locator 1 (W2ru)"
  uint64_t end() const { return offset + length; }
};

// A decoded parent locator entry of a differencing disk.
struct LocatorText {
  size_t index = 0;  // 0..7 in the header
  uint32_t platform_code = 0;
  std::string text;  // UTF-8
};

// Problems found, as sentences naming the structure. Errors make the image unusable; warnings do not.
struct Problems {
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};

struct Metadata {
  uint64_t file_size = 0;
  Footer footer;                  // the footer read: the end footer, or the copy at offset 0 where qemu reads it
  Bytes footer_raw;               // its 512 bytes as read (reserved bytes kept when it is moved)
  uint64_t footer_offset = 0;     // where it starts: file_size - 512 (file_size - 511 for pre-2004 images)
  bool footer_from_copy = false;  // no footer at the end: the copy at offset 0 was read (footer_offset = file size)
  std::string write_refusal;      // non-empty: why this file must not be written (read-only use is fine)
  DiskTypeCode type = DiskTypeCode::None;
  uint64_t virtual_size = 0;

  // Dynamic and differencing disks only:
  std::optional<DynamicHeader> header;
  std::vector<uint32_t> bat;          // Max Table Entries entries, as stored
  uint64_t block_count = 0;           // BAT entries the virtual size uses (<= bat.size())
  uint64_t bitmap_size = 0;           // bytes of each block's sector bitmap
  std::vector<Region> regions;        // metadata extents, in file order
  std::vector<LocatorText> locators;  // differencing disks: readable parent locators
};

// Reads and checks every structure. Every problem goes into `problems`; the result is an error naming
// them when any is an error (or when the file cannot be read). Reads only.
Result<Metadata> read_metadata(io::File& file, Problems& problems);

// The first few errors joined into one message ("...; ...; and 3 more problems").
std::string summarize(const std::vector<std::string>& errors);

}  // namespace vhdkit::vhd
