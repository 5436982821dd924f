// SPDX-License-Identifier: Apache-2.0
// The VHD on-disk structures (Microsoft "Virtual Hard Disk Image Format Specification", v1.0, 2006), all
// big-endian, in one place. Field comments give the spec's field names and byte offsets.
//
// File layouts:
//   fixed:        [virtual disk data][footer (512)]
//   dynamic/diff: [footer copy (512)][dynamic header (1024)][BAT][parent locator data...]
//                 [bitmap|block]...[footer (512)]
// A block is its sector bitmap (one bit per 512-byte sector, MSB first, padded to a sector multiple)
// followed by block_size bytes of data. BAT entries hold the sector number of a block's bitmap.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/guid.h"

namespace vhdkit::vhd {

inline constexpr uint64_t kSectorSize = 512;
inline constexpr size_t kFooterSize = 512;
inline constexpr size_t kDynamicHeaderSize = 1024;
inline constexpr size_t kParentLocatorCount = 8;
inline constexpr size_t kParentNameBytes = 512;       // 256 UTF-16 code units
inline constexpr uint32_t kUnallocated = 0xFFFFFFFF;  // BAT entry of a block with no storage
inline constexpr uint64_t kNoOffset = ~uint64_t{0};   // "Data Offset" of a fixed disk / dynamic header
inline constexpr uint32_t kFormatVersion = 0x00010000;
inline constexpr uint32_t kFeaturesReserved = 0x2;  // "Reserved. This bit must always be set to 1."
inline constexpr uint32_t kDefaultBlockSize = 2 * 1024 * 1024;
// qemu refuses anything larger (2040 GiB); so do we, so that no image we accept is one qemu cannot open.
inline constexpr uint64_t kMaxVirtualSize = 2040ull << 30;
// The largest block we accept: the spec's default is 2 MiB and VHDX caps blocks at 256 MiB.
inline constexpr uint32_t kMaxBlockSize = 256u << 20;
// qemu's sector bitmap size, ((block_size / 4096) + 511) & ~511, is 0 for blocks under 4 KiB: it reads such VHDs
// wrongly, so we do not make them (we read them by the spec).
inline constexpr uint32_t kMinInteropBlockSize = 4096;
// qemu refuses a Max Table Entries above INT_MAX / 4; we hold at most 8 Mi entries (32 MiB) in memory, which
// covers the largest VHD with blocks of 256 KiB or more.
inline constexpr uint64_t kQemuMaxTableEntries = 0x7fffffff / 4;
inline constexpr uint64_t kMaxReadTableEntries = uint64_t{1} << 23;
// A parent locator holds a path: we read at most 1 MiB of it.
inline constexpr uint64_t kMaxLocatorDataLength = 1 << 20;
// Seconds between the Unix epoch and the VHD epoch (2000-01-01 00:00:00 UTC).
inline constexpr uint64_t kVhdEpoch = 946684800;

enum class DiskTypeCode : uint32_t { None = 0, Fixed = 2, Dynamic = 3, Differencing = 4 };

// "Disk Geometry": cylinders (2 bytes), heads (1), sectors per track (1).
struct Geometry {
  uint16_t cylinders = 0;
  uint8_t heads = 0;
  uint8_t sectors_per_track = 0;
  uint64_t sectors() const { return uint64_t{cylinders} * heads * sectors_per_track; }
  bool operator==(const Geometry&) const = default;
};
// 65535/16/255: the spec's largest geometry. Writers use it for sizes CHS cannot express.
inline constexpr Geometry kMaxGeometry{65535, 16, 255};
// The spec's CHS calculation (appendix "CHS Calculation") for a disk of total_sectors sectors.
Geometry geometry_for(uint64_t total_sectors);

// Hard disk footer, 512 bytes (the spec's "Hard Disk Footer Format").
struct Footer {
  std::array<char, 8> cookie{};           // 0   Cookie: "conectix"
  uint32_t features = 0;                  // 8   Features (bit 0 temporary, bit 1 reserved = 1)
  uint32_t format_version = 0;            // 12  File Format Version: 0x00010000
  uint64_t data_offset = 0;               // 16  Data Offset: the dynamic header; all ones when fixed
  uint32_t timestamp = 0;                 // 24  Time Stamp: seconds since 2000-01-01 UTC
  std::array<char, 4> creator_app{};      // 28  Creator Application ("vpc ", "win ", "qemu", ...)
  uint32_t creator_version = 0;           // 32  Creator Version (major << 16 | minor)
  std::array<char, 4> creator_host_os{};  // 36 Creator Host OS ("Wi2k", "Mac ")
  uint64_t original_size = 0;             // 40  Original Size (bytes)
  uint64_t current_size = 0;              // 48  Current Size (bytes)
  Geometry geometry;                      // 56  Disk Geometry
  uint32_t disk_type = 0;                 // 60  Disk Type
  uint32_t checksum = 0;                  // 64  Checksum
  Guid unique_id;                         // 68  Unique Id
  uint8_t saved_state = 0;                // 84  Saved State
                                          // 85  Reserved (427 bytes of zeros)
};

// One "Parent Locator Entry", 24 bytes, eight of them in the dynamic header.
struct ParentLocator {
  uint32_t platform_code = 0;         // 0   Platform Code ("W2ku", "W2ru", "MacX", ... ; 0 = none)
  uint32_t platform_data_space = 0;   // 4   Platform Data Space (spec: sectors; Windows writes bytes)
  uint32_t platform_data_length = 0;  // 8   Platform Data Length (bytes)
  uint32_t reserved = 0;              // 12  Reserved
  uint64_t platform_data_offset = 0;  // 16  Platform Data Offset (absolute file offset)
};
inline constexpr uint32_t fourcc(const char (&s)[5]) {
  return uint32_t(uint8_t(s[0])) << 24 | uint32_t(uint8_t(s[1])) << 16 | uint32_t(uint8_t(s[2])) << 8 |
         uint32_t(uint8_t(s[3]));
}
inline constexpr uint32_t kPlatformW2ku = fourcc("W2ku");  // absolute Windows path, UTF-16LE
inline constexpr uint32_t kPlatformW2ru = fourcc("W2ru");  // path relative to the child, UTF-16LE
inline constexpr uint32_t kPlatformWi2k = fourcc("Wi2k");  // deprecated absolute path
inline constexpr uint32_t kPlatformWi2r = fourcc("Wi2r");  // deprecated relative path
inline constexpr uint32_t kPlatformMacX = fourcc("MacX");  // file URL, UTF-8
inline constexpr uint32_t kPlatformMac = fourcc("Mac ");   // Mac OS alias blob

// Dynamic disk header, 1024 bytes (the spec's "Dynamic Disk Header Format").
struct DynamicHeader {
  std::array<char, 8> cookie{};        // 0    Cookie: "cxsparse"
  uint64_t data_offset = 0;            // 8    Data Offset: unused, all ones
  uint64_t table_offset = 0;           // 16   Table Offset: file offset of the BAT
  uint32_t header_version = 0;         // 24   Header Version: 0x00010000
  uint32_t max_table_entries = 0;      // 28   Max Table Entries
  uint32_t block_size = 0;             // 32   Block Size (bytes; data only, bitmap excluded)
  uint32_t checksum = 0;               // 36   Checksum
  Guid parent_unique_id;               // 40   Parent Unique ID
  uint32_t parent_timestamp = 0;       // 56   Parent Time Stamp
  uint32_t reserved = 0;               // 60   Reserved
  std::u16string parent_unicode_name;  // 64   Parent Unicode Name (512 bytes, UTF-16BE, NUL-padded)
  std::array<ParentLocator, kParentLocatorCount> locators{};  // 576  Parent Locator Entries (8 x 24)
                                                              // 768  Reserved (256 bytes of zeros)
};

inline constexpr size_t kFooterChecksumOffset = 64;
inline constexpr size_t kHeaderChecksumOffset = 36;

// "one's complement of the sum of all the bytes ... without the checksum field".
uint32_t vhd_checksum(std::span<const std::byte> raw, size_t checksum_offset);

Footer decode_footer(std::span<const std::byte, kFooterSize> raw);
// Encodes every field as given (checksum included) over zeroed reserved bytes.
void encode_footer(const Footer& f, std::span<std::byte, kFooterSize> raw);
DynamicHeader decode_dynamic_header(std::span<const std::byte, kDynamicHeaderSize> raw);
void encode_dynamic_header(const DynamicHeader& h, std::span<std::byte, kDynamicHeaderSize> raw);
// Sets the checksum field of an encoded structure to match the other bytes.
void seal(std::span<std::byte> raw, size_t checksum_offset);

bool is_footer_cookie(std::span<const std::byte> raw);  // first 8 bytes are "conectix"
bool is_header_cookie(std::span<const std::byte> raw);  // first 8 bytes are "cxsparse"

// Printable forms: "W2ku", "win ", "d2v\0" -> "d2v".
std::string fourcc_text(uint32_t code);
std::string chars_text(std::span<const char> chars);

// How the virtual size is derived. Microsoft Virtual PC trusts the CHS geometry, Hyper-V and most later
// tools trust Current Size. We follow qemu's table (block/vpc.c) so that `vhdkit info` and `qemu-img info`
// always agree: Current Size for the creators known to use it and for images whose geometry is the
// maximum (the only way to say "bigger than CHS can express"), the geometry otherwise.
enum class SizeSource { CurrentSize, Geometry };
SizeSource size_source(const Footer& f);
uint64_t virtual_size_of(const Footer& f);

// Bytes of a block's sector bitmap: one bit per sector, padded to whole sectors.
constexpr uint64_t bitmap_bytes(uint64_t block_size) {
  return round_up(div_round_up(block_size / kSectorSize, 8), kSectorSize);
}

}  // namespace vhdkit::vhd
