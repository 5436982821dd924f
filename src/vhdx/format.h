// SPDX-License-Identifier: Apache-2.0
// VHDX on-disk structures, per [MS-VHDX] (Virtual Hard Disk v2 Format Specification). Every structure of
// the format lives in this one header: field names and byte offsets in the comments are the spec's.
// All integers are little-endian; GUIDs are stored in Microsoft's mixed-endian layout (core/guid.h).
//
// File layout (section 2.1): the first 1 MiB is the header section:
//   0        File Type Identifier (64 KiB)
//   64 KiB   Header 1 (4 KiB used)          128 KiB  Header 2
//   192 KiB  Region Table 1 (64 KiB)        256 KiB  Region Table 2
// Everything else (log, BAT region, metadata region, payload and sector bitmap blocks) is placed at 1 MiB
// multiples and found through the current header (log) and the region table (BAT, metadata).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/guid.h"
#include "core/utf16.h"  // the creator string and parent locator keys/values are UTF-16LE

namespace vhdkit::vhdx {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t GiB = 1024 * MiB;
constexpr uint64_t TiB = 1024 * GiB;

// Section 2.2 offsets of the header section's structures.
constexpr uint64_t kFileIdentifierOffset = 0;
constexpr uint64_t kHeaderOffsets[2] = {64 * KiB, 128 * KiB};
constexpr uint64_t kRegionTableOffsets[2] = {192 * KiB, 256 * KiB};
constexpr uint64_t kHeaderSectionSize = 1 * MiB;
constexpr size_t kHeaderSize = 4 * KiB;         // the checksummed part of a header
constexpr size_t kRegionTableSize = 64 * KiB;   // the checksummed size of a region table
constexpr size_t kLogSectorSize = 4 * KiB;      // log entries are made of 4 KiB sectors
constexpr uint64_t kAlignment = 1 * MiB;        // regions, the log, and blocks are 1 MiB aligned
constexpr uint64_t kMaxVirtualSize = 64 * TiB;  // section 2.6.2.2
constexpr uint32_t kMinBlockSize = 1 * MiB;     // section 2.6.2.1
constexpr uint32_t kMaxBlockSize = 256 * MiB;
constexpr uint32_t kMaxTableEntries = 2047;  // region table and metadata table
constexpr uint64_t kSectorBitmapBlockSize = 1 * MiB;
// Limits from sense, not from the spec: no VHDX file needs to be larger than its largest virtual disk plus
// a terabyte of structures, and no writer makes logs larger than a few MiB (Hyper-V and qemu: 1 MiB).
// What is read into memory because the file says so is bounded by these.
constexpr uint64_t kMaxFileSize = kMaxVirtualSize + 1 * TiB;
constexpr uint64_t kMaxReplayedLogLength = 32 * MiB;

// ---- 2.2.1 File Type Identifier ------------------------------------------------------------------------
//   Signature (8 bytes) @0   "vhdxfile"
//   Creator (512 bytes) @8   UTF-16LE, informational, not NUL-terminated when it fills the field
struct FileIdentifier {
  std::u16string creator;
};
constexpr size_t kFileIdentifierSize = 64 * KiB;
std::optional<FileIdentifier> parse_file_identifier(std::span<const std::byte> b);  // nullopt: bad signature
Bytes serialize_file_identifier(const FileIdentifier& id);                          // 64 KiB

// ---- 2.2.2 Headers ---------------------------------------------------------------------------------------
//   Signature (4) @0 "head"      Checksum (4) @4 CRC-32C over the 4 KiB with this field zero
//   SequenceNumber (8) @8        FileWriteGuid (16) @16   DataWriteGuid (16) @32   LogGuid (16) @48
//   LogVersion (2) @64 = 0       Version (2) @66 = 1      LogLength (4) @68        LogOffset (8) @72
//   Reserved (4016) @80
struct Header {
  uint64_t sequence_number = 0;
  Guid file_write_guid;
  Guid data_write_guid;
  Guid log_guid;
  uint16_t log_version = 0;
  uint16_t version = 1;
  uint32_t log_length = 0;
  uint64_t log_offset = 0;
};
enum class HeaderProblem { None, BadSignature, BadChecksum };
HeaderProblem check_header_bytes(std::span<const std::byte> b);  // b: 4 KiB
Header parse_header(std::span<const std::byte> b);
Bytes serialize_header(const Header& h);  // 4 KiB with checksum

// ---- 2.2.3 Region Table ----------------------------------------------------------------------------------
// Region Table Header (16 bytes):
//   Signature (4) @0 "regi"  Checksum (4) @4 CRC-32C over the 64 KiB table  EntryCount (4) @8 <= 2047
//   Reserved (4) @12
// Region Table Entry (32 bytes), from offset 16:
//   Guid (16) @0   FileOffset (8) @16 (1 MiB multiple)   Length (4) @24 (1 MiB multiple)
//   Required (bit 0 of the 4 bytes @28): the region must be understood to open the file
struct RegionEntry {
  Guid guid;
  uint64_t file_offset = 0;
  uint32_t length = 0;
  bool required = false;
};
struct RegionTable {
  std::vector<RegionEntry> entries;
};
enum class RegionTableProblem { None, BadSignature, BadChecksum, TooManyEntries };
RegionTableProblem check_region_table_bytes(std::span<const std::byte> b);  // b: 64 KiB
RegionTable parse_region_table(std::span<const std::byte> b);
Bytes serialize_region_table(const RegionTable& t);  // 64 KiB with checksum

// Known regions (2.2.3.1).
const Guid& bat_region_guid();       // 2DC27766-F623-4200-9D64-115E9BFD4A08
const Guid& metadata_region_guid();  // 8B7CA206-4790-4B9A-B8FE-575F050F886E

// ---- 2.3 Log ---------------------------------------------------------------------------------------------
// Log Entry Header (64 bytes), at the start of an entry's first 4 KiB sector:
//   Signature (4) @0 "loge"   Checksum (4) @4 CRC-32C over the whole entry (EntryLength bytes), this field 0
//   EntryLength (4) @8 (4 KiB multiple)   Tail (4) @12 (log offset of the oldest entry still needed)
//   SequenceNumber (8) @16    DescriptorCount (4) @24    Reserved (4) @28    LogGuid (16) @32
//   FlushedFileOffset (8) @48 (file size the writer had made durable)
//   LastFileOffset (8) @56    (file size needed for everything the log describes)
// Descriptors (32 bytes each) follow the header; header + descriptors fill whole 4 KiB sectors, then one
// 4 KiB data sector per data descriptor, in descriptor order.
//
// Zero Descriptor:  ZeroSignature (4) @0 "zero"  Reserved (4) @4  ZeroLength (8) @8 (4 KiB multiple)
//                   FileOffset (8) @16 (4 KiB multiple)  SequenceNumber (8) @24 (= the entry's)
// Data Descriptor:  DataSignature (4) @0 "desc"  TrailingBytes (4) @4 (the sector's last 4 bytes)
//                   LeadingBytes (8) @8 (the sector's first 8 bytes)  FileOffset (8) @16 (4 KiB multiple)
//                   SequenceNumber (8) @24
// Data Sector (4 KiB): DataSignature (4) @0 "data"  SequenceHigh (4) @4  Data (4084) @8  SequenceLow (4) @4092
//   The sector written to FileOffset is LeadingBytes + Data + TrailingBytes.
constexpr size_t kLogEntryHeaderSize = 64;
constexpr size_t kLogDescriptorSize = 32;
struct LogEntryHeader {
  uint32_t checksum = 0;
  uint32_t entry_length = 0;
  uint32_t tail = 0;
  uint64_t sequence_number = 0;
  uint32_t descriptor_count = 0;
  Guid log_guid;
  uint64_t flushed_file_offset = 0;
  uint64_t last_file_offset = 0;
};
bool has_log_entry_signature(std::span<const std::byte> b);
LogEntryHeader parse_log_entry_header(std::span<const std::byte> b);
void serialize_log_entry_header(const LogEntryHeader& h, std::span<std::byte> out);  // 64 bytes, checksum as given

enum class DescriptorKind { Zero, Data, Unknown };
struct LogDescriptor {
  DescriptorKind kind = DescriptorKind::Unknown;
  uint32_t trailing_bytes = 0;  // data
  uint64_t leading_bytes = 0;   // data
  uint64_t zero_length = 0;     // zero
  uint64_t file_offset = 0;
  uint64_t sequence_number = 0;
};
LogDescriptor parse_log_descriptor(std::span<const std::byte> b);
void serialize_log_descriptor(const LogDescriptor& d, std::span<std::byte> out);  // 32 bytes

// Descriptor sectors an entry with n descriptors needs (header + descriptors, rounded up to 4 KiB).
constexpr uint64_t log_descriptor_sectors(uint64_t n) {
  return div_round_up(kLogEntryHeaderSize + n * kLogDescriptorSize, kLogSectorSize);
}

// ---- 2.4 BAT ---------------------------------------------------------------------------------------------
// BAT Entry (64 bits): State (bits 0-2)  Reserved (bits 3-19)  FileOffsetMB (bits 20-63)
// Payload blocks and sector bitmap blocks are interleaved: after every `chunk ratio` payload entries comes
// the entry of the sector bitmap block that covers them (2.4, 2.5).
enum class PayloadState : uint8_t {
  NotPresent = 0,        // PAYLOAD_BLOCK_NOT_PRESENT: zeros, or the parent's data in a differencing disk
  Undefined = 1,         // PAYLOAD_BLOCK_UNDEFINED
  Zero = 2,              // PAYLOAD_BLOCK_ZERO
  Unmapped = 3,          // PAYLOAD_BLOCK_UNMAPPED
  UnmappedV095 = 5,      // the value of UNMAPPED in the 0.95 draft; qemu and other old writers used it
  FullyPresent = 6,      // PAYLOAD_BLOCK_FULLY_PRESENT
  PartiallyPresent = 7,  // PAYLOAD_BLOCK_PARTIALLY_PRESENT: differencing only, per-sector via the bitmap
};
enum class BitmapState : uint8_t {
  NotPresent = 0,  // SB_BLOCK_NOT_PRESENT
  Present = 6,     // SB_BLOCK_PRESENT
};
constexpr uint8_t bat_state(uint64_t entry) { return static_cast<uint8_t>(entry & 7); }
// The one "block has data" test: FULLY_PRESENT and PARTIALLY_PRESENT blocks hold data in the file (and their
// file space); every other state reads zeros or the parent.
constexpr bool holds_data(PayloadState s) {
  return s == PayloadState::FullyPresent || s == PayloadState::PartiallyPresent;
}
constexpr bool holds_data(uint8_t raw_state) { return holds_data(static_cast<PayloadState>(raw_state)); }
constexpr uint64_t bat_file_offset(uint64_t entry) { return (entry >> 20) * MiB; }
constexpr uint64_t bat_reserved_bits(uint64_t entry) { return (entry >> 3) & 0x1FFFF; }
constexpr uint64_t make_bat_entry(uint8_t state, uint64_t file_offset) { return (file_offset / MiB) << 20 | state; }
bool is_known_payload_state(uint8_t s);
const char* payload_state_name(uint8_t s);  // "NOT_PRESENT", ..., "reserved value 4"
// Sector bitmap bit i (2.4.2: bit 0 of byte 0 is the first sector; set: the sector's data is in this file).
inline bool sector_bit(std::span<const std::byte> bits, uint64_t i) {
  return (static_cast<unsigned>(bits[i / 8]) >> (i % 8)) & 1;
}

// ---- 2.6 Metadata Region ---------------------------------------------------------------------------------
// Metadata Table Header (32 bytes): Signature (8) @0 "metadata"  Reserved (2) @8  EntryCount (2) @10 <= 2047
//                                   Reserved2 (20) @12
// Metadata Table Entry (32 bytes), from offset 32:
//   ItemId (16) @0   Offset (4) @16 (from the region start, >= 64 KiB unless Length is 0)   Length (4) @20
//   IsUser (bit 0), IsVirtualDisk (bit 1), IsRequired (bit 2) of the 4 bytes @24   Reserved2 (4) @28
constexpr size_t kMetadataTableSize = 64 * KiB;
struct MetadataEntry {
  Guid item_id;
  uint32_t offset = 0;
  uint32_t length = 0;
  bool is_user = false;
  bool is_virtual_disk = false;
  bool is_required = false;
};
bool has_metadata_signature(std::span<const std::byte> b);
std::vector<MetadataEntry> parse_metadata_table(std::span<const std::byte> b);  // b: 64 KiB
Bytes serialize_metadata_table(const std::vector<MetadataEntry>& entries);      // 64 KiB

// Known metadata items (2.6.2).
const Guid& file_parameters_guid();       // CAA16737-FA36-4D43-B3B6-33F0AA44E76B
const Guid& virtual_disk_size_guid();     // 2FA54224-CD1B-4876-B211-5DBED83BF4B8
const Guid& page83_data_guid();           // BECA12AB-B2E6-4523-93EF-C309E000C746 (Virtual Disk ID)
const Guid& logical_sector_size_guid();   // 8141BF1D-A96F-4709-BA47-F233A8FAAB5F
const Guid& physical_sector_size_guid();  // CDA348C7-445D-4471-9CC9-E9885251C556
const Guid& parent_locator_guid();        // A8D35F2D-B30B-454D-ABF7-D3D84834AB0C
const Guid& vhdx_parent_locator_type();   // B04AEFB7-D19E-4A81-B789-25B8E9445913

// 2.6.2.1 File Parameters (8 bytes): BlockSize (4) @0; LeaveBlockAllocated (bit 0), HasParent (bit 1) @4.
// 2.6.2.2 Virtual Disk Size (8). 2.6.2.3 Page 83 Data: a GUID (16). 2.6.2.4/5 sector sizes (4 each).
// 2.6.2.6 Parent Locator: header LocatorType (16) @0, Reserved (2) @16, KeyValueCount (2) @18; then
//   entries (12 bytes each): KeyOffset (4) @0, ValueOffset (4) @4 (from the item's start), KeyLength (2) @8,
//   ValueLength (2) @10; keys and values are UTF-16LE. Keys: parent_linkage, parent_linkage2,
//   relative_path, volume_path, absolute_win32_path.
constexpr size_t kParentLocatorHeaderSize = 20;
constexpr size_t kParentLocatorEntrySize = 12;

// CRC-32C (Castagnoli), as every VHDX checksum uses.
uint32_t crc32c(std::span<const std::byte> data);
// Computes the CRC-32C of b with the 4 bytes at checksum_offset taken as zero.
uint32_t crc32c_with_zero_field(std::span<const std::byte> b, size_t checksum_offset);

}  // namespace vhdkit::vhdx
