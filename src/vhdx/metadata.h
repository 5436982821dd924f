// SPDX-License-Identifier: Apache-2.0
// The VHDX metadata region ([MS-VHDX] 2.6): the table and the known items, parsed and validated.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "vhdx/format.h"

namespace vhdkit::vhdx {

// 2.6.2.6: key/value pairs of a parent locator (keys and values as UTF-8).
struct ParentLocator {
  Guid locator_type;
  std::vector<std::pair<std::string, std::string>> entries;
  std::optional<std::string> get(const std::string& key) const;
};

struct Metadata {
  uint32_t block_size = 0;              // File Parameters: BlockSize
  bool leave_block_allocated = false;   // File Parameters: LeaveBlockAllocated (fixed disks set it)
  bool has_parent = false;              // File Parameters: HasParent (differencing disks)
  uint64_t virtual_size = 0;            // Virtual Disk Size
  Guid page83;                          // Page 83 Data: the virtual disk's identifier
  uint32_t logical_sector_size = 512;   // 512 or 4096
  uint32_t physical_sector_size = 512;  // 512 or 4096
  std::optional<ParentLocator> parent_locator;
  std::vector<MetadataEntry> table;  // the table as found (every item, known or not)
};

// Parses the metadata region (its full length) and validates every rule of 2.6: signature, entry count,
// item placement, unknown required items, missing required items, value ranges. Errors name the item.
Result<Metadata> parse_metadata(std::span<const std::byte> region, const std::string& path);
// The same, reading the region in pieces (the table, then each item of at most 1 MiB): a region length from the
// file is never allocated whole. read(offset, out) fills out with the region's bytes at offset.
using MetadataReader = std::function<Status(uint64_t offset, std::span<std::byte> out)>;
Result<Metadata> parse_metadata(uint64_t region_length, const MetadataReader& read, const std::string& path);
// [MS-VHDX] 2.6.1.2: an item's Length is at most 1 MiB.
constexpr uint32_t kMaxMetadataItemSize = 1024 * 1024;

// Lays out a metadata region of `region_length` bytes holding the known items of m.
Bytes serialize_metadata(const Metadata& m, uint32_t region_length);

}  // namespace vhdkit::vhdx
