// SPDX-License-Identifier: Apache-2.0
// The format-agnostic view of a disk image: what callers above the formats (CLI, compaction, file
// systems, service) see. Each format (raw, vhd, vhdx) implements it behind its Driver (disk/driver.h);
// image::open_image() (src/image) picks the driver.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "io/file.h"

namespace vhdkit::disk {

enum class Format { Raw, Vhd, Vhdx };
enum class DiskType { Fixed, Dynamic, Differencing };

// "raw", "vhd", "vhdx"
constexpr std::string_view to_string(Format f) {
  switch (f) {
    case Format::Raw: return "raw";
    case Format::Vhd: return "vhd";
    case Format::Vhdx: return "vhdx";
  }
  return "?";
}

// The format a name (as to_string gives it) stands for.
constexpr std::optional<Format> format_from_string(std::string_view text) {
  for (auto f : {Format::Raw, Format::Vhd, Format::Vhdx})
    if (text == to_string(f)) return f;
  return std::nullopt;
}

// "fixed", "dynamic", "differencing"
constexpr std::string_view to_string(DiskType t) {
  switch (t) {
    case DiskType::Fixed: return "fixed";
    case DiskType::Dynamic: return "dynamic";
    case DiskType::Differencing: return "differencing";
  }
  return "?";
}

// What `vhdkit info` reports. Format-specific facts go in `details` (shown as "key: value").
struct DiskInfo {
  Format format = Format::Raw;
  DiskType type = DiskType::Fixed;
  uint64_t virtual_size = 0;
  uint32_t block_size = 0;  // 0 when the format has no blocks (raw, fixed VHD)
  uint64_t block_count = 0;
  uint64_t blocks_allocated = 0;
  uint32_t logical_sector_size = 512;
  uint32_t physical_sector_size = 512;
  uint64_t file_size = 0;
  std::string creator;                     // e.g. "win  6.3 (Wi2k)" or "Microsoft Windows 6.2.9200.16384"
  std::string disk_id;                     // the image's UUID/GUID in its format's customary text form
  std::optional<std::string> parent_path;  // as recorded by the child (resolved path when found)
  std::vector<std::pair<std::string, std::string>> details;
};

// One run of the virtual disk with uniform allocation, in the shape of `qemu-img map --output=json`.
struct MapExtent {
  uint64_t start = 0;
  uint64_t length = 0;
  int depth = 0;  // 0: this image stores it; 1: its parent; ...
  bool present = false;
  bool zero = false;
  bool data = false;
  std::optional<uint64_t> offset;  // host file offset of the data, when valid
  bool operator==(const MapExtent&) const = default;
};

class VirtualDisk {
 public:
  virtual ~VirtualDisk() = default;

  virtual const std::string& path() const = 0;
  virtual DiskInfo info() const = 0;
  virtual uint64_t virtual_size() const = 0;

  // Virtual bytes, read through the parent chain. Ranges past virtual_size() are InvalidParameter.
  virtual Status read(uint64_t offset, std::span<std::byte> buf) = 0;
  // Writes virtual bytes, allocating blocks as needed. InvalidState when opened read-only.
  virtual Status write(uint64_t offset, std::span<const std::byte> buf) = 0;
  virtual Status flush() = 0;

  // Allocation of the whole virtual disk, sorted, adjacent equal runs merged.
  virtual Result<std::vector<MapExtent>> map() = 0;

  // Every structural problem found, as sentences naming the structure ("BAT entry 17 points past the end
  // of the file"). Empty means the image is clean.
  virtual std::vector<std::string> check() = 0;

  // The parent of a differencing disk, or nullptr.
  virtual VirtualDisk* parent() = 0;
  virtual io::File& file() = 0;
};

enum class ParentPolicy {
  Require,   // opening fails when a differencing disk's parent cannot be found or does not match
  Optional,  // open anyway (for info/check); reads that would fall through to the parent fail
  Skip,      // do not look for parents at all: judging an image by its own structures
};

// Which lock the dispatcher takes on the image before it parses anything (durability rule D9). A writer
// always holds Exclusive; a reader that must see a file nobody changes under it (a dry run) asks Shared.
// None: no lock and no check. NoWriter: refused while someone writes, holding nothing (io::LockMode).
enum class Lock { None, Shared, Exclusive, NoWriter };

struct OpenOptions {
  io::Access access = io::Access::ReadOnly;
  std::optional<Format> format;  // force a format instead of detecting it
  ParentPolicy parents = ParentPolicy::Require;
  // ReadWrite opens are always Exclusive, whatever this says.
  Lock lock = Lock::None;
};

}  // namespace vhdkit::disk
