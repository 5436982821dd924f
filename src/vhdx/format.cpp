// SPDX-License-Identifier: Apache-2.0
#include "vhdx/format.h"

#include <fmt/format.h>
#include <boost/crc.hpp>

#include <cstring>

namespace vhdkit::vhdx {
namespace {

bool signature_is(std::span<const std::byte> b, const char* sig, size_t n) {
  return b.size() >= n && std::memcmp(b.data(), sig, n) == 0;
}
void put_signature(std::span<std::byte> b, const char* sig, size_t n) { std::memcpy(b.data(), sig, n); }

// The texts below are literals that always parse.
Guid known(const char* text) { return *Guid::parse_ms(text); }

}  // namespace

#define VHDX_KNOWN_GUID(fn, text)      \
  const Guid& fn() {                   \
    static const Guid g = known(text); \
    return g;                          \
  }
VHDX_KNOWN_GUID(bat_region_guid, "2DC27766-F623-4200-9D64-115E9BFD4A08")
VHDX_KNOWN_GUID(metadata_region_guid, "8B7CA206-4790-4B9A-B8FE-575F050F886E")
VHDX_KNOWN_GUID(file_parameters_guid, "CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VHDX_KNOWN_GUID(virtual_disk_size_guid, "2FA54224-CD1B-4876-B211-5DBED83BF4B8")
VHDX_KNOWN_GUID(page83_data_guid, "BECA12AB-B2E6-4523-93EF-C309E000C746")
VHDX_KNOWN_GUID(logical_sector_size_guid, "8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
VHDX_KNOWN_GUID(physical_sector_size_guid, "CDA348C7-445D-4471-9CC9-E9885251C556")
VHDX_KNOWN_GUID(parent_locator_guid, "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
VHDX_KNOWN_GUID(vhdx_parent_locator_type, "B04AEFB7-D19E-4A81-B789-25B8E9445913")
#undef VHDX_KNOWN_GUID

uint32_t crc32c(std::span<const std::byte> data) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

uint32_t crc32c_with_zero_field(std::span<const std::byte> b, size_t checksum_offset) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  const std::byte zeros[4]{};
  crc.process_bytes(b.data(), checksum_offset);
  crc.process_bytes(zeros, 4);
  crc.process_bytes(b.data() + checksum_offset + 4, b.size() - checksum_offset - 4);
  return crc.checksum();
}

// ---- File identifier ----
std::optional<FileIdentifier> parse_file_identifier(std::span<const std::byte> b) {
  if (!signature_is(b, "vhdxfile", 8)) return std::nullopt;
  FileIdentifier id;
  std::string utf8 = utf16le_to_utf8(b.subspan(8, std::min<size_t>(512, b.size() - 8)));
  id.creator.assign(utf8.begin(), utf8.end());
  return id;
}

Bytes serialize_file_identifier(const FileIdentifier& id) {
  Bytes b(kFileIdentifierSize);
  put_signature(b, "vhdxfile", 8);
  std::string utf8(id.creator.begin(), id.creator.end());
  Bytes creator = utf8_to_utf16le(utf8);
  std::memcpy(b.data() + 8, creator.data(), std::min<size_t>(creator.size(), 512));
  return b;
}

// ---- Header ----
HeaderProblem check_header_bytes(std::span<const std::byte> b) {
  if (!signature_is(b, "head", 4)) return HeaderProblem::BadSignature;
  if (load_le<uint32_t>(b.data() + 4) != crc32c_with_zero_field(b.first(kHeaderSize), 4))
    return HeaderProblem::BadChecksum;
  return HeaderProblem::None;
}

Header parse_header(std::span<const std::byte> b) {
  Header h;
  h.sequence_number = load_le<uint64_t>(b.data() + 8);
  h.file_write_guid = load_guid(b.data() + 16);
  h.data_write_guid = load_guid(b.data() + 32);
  h.log_guid = load_guid(b.data() + 48);
  h.log_version = load_le<uint16_t>(b.data() + 64);
  h.version = load_le<uint16_t>(b.data() + 66);
  h.log_length = load_le<uint32_t>(b.data() + 68);
  h.log_offset = load_le<uint64_t>(b.data() + 72);
  return h;
}

Bytes serialize_header(const Header& h) {
  Bytes b(kHeaderSize);
  put_signature(b, "head", 4);
  store_le<uint64_t>(b.data() + 8, h.sequence_number);
  store_guid(b.data() + 16, h.file_write_guid);
  store_guid(b.data() + 32, h.data_write_guid);
  store_guid(b.data() + 48, h.log_guid);
  store_le<uint16_t>(b.data() + 64, h.log_version);
  store_le<uint16_t>(b.data() + 66, h.version);
  store_le<uint32_t>(b.data() + 68, h.log_length);
  store_le<uint64_t>(b.data() + 72, h.log_offset);
  store_le<uint32_t>(b.data() + 4, crc32c(b));
  return b;
}

// ---- Region table ----
RegionTableProblem check_region_table_bytes(std::span<const std::byte> b) {
  if (!signature_is(b, "regi", 4)) return RegionTableProblem::BadSignature;
  if (load_le<uint32_t>(b.data() + 4) != crc32c_with_zero_field(b.first(kRegionTableSize), 4))
    return RegionTableProblem::BadChecksum;
  if (load_le<uint32_t>(b.data() + 8) > kMaxTableEntries) return RegionTableProblem::TooManyEntries;
  return RegionTableProblem::None;
}

RegionTable parse_region_table(std::span<const std::byte> b) {
  RegionTable t;
  uint32_t n = load_le<uint32_t>(b.data() + 8);
  for (uint32_t i = 0; i < n && i < kMaxTableEntries; ++i) {
    const std::byte* e = b.data() + 16 + i * 32;
    RegionEntry r;
    r.guid = load_guid(e);
    r.file_offset = load_le<uint64_t>(e + 16);
    r.length = load_le<uint32_t>(e + 24);
    r.required = (load_le<uint32_t>(e + 28) & 1) != 0;
    t.entries.push_back(r);
  }
  return t;
}

Bytes serialize_region_table(const RegionTable& t) {
  Bytes b(kRegionTableSize);
  put_signature(b, "regi", 4);
  store_le<uint32_t>(b.data() + 8, static_cast<uint32_t>(t.entries.size()));
  for (size_t i = 0; i < t.entries.size(); ++i) {
    std::byte* e = b.data() + 16 + i * 32;
    store_guid(e, t.entries[i].guid);
    store_le<uint64_t>(e + 16, t.entries[i].file_offset);
    store_le<uint32_t>(e + 24, t.entries[i].length);
    store_le<uint32_t>(e + 28, t.entries[i].required ? 1u : 0u);
  }
  store_le<uint32_t>(b.data() + 4, crc32c(b));
  return b;
}

// ---- Log ----
bool has_log_entry_signature(std::span<const std::byte> b) { return signature_is(b, "loge", 4); }

LogEntryHeader parse_log_entry_header(std::span<const std::byte> b) {
  LogEntryHeader h;
  h.checksum = load_le<uint32_t>(b.data() + 4);
  h.entry_length = load_le<uint32_t>(b.data() + 8);
  h.tail = load_le<uint32_t>(b.data() + 12);
  h.sequence_number = load_le<uint64_t>(b.data() + 16);
  h.descriptor_count = load_le<uint32_t>(b.data() + 24);
  h.log_guid = load_guid(b.data() + 32);
  h.flushed_file_offset = load_le<uint64_t>(b.data() + 48);
  h.last_file_offset = load_le<uint64_t>(b.data() + 56);
  return h;
}

void serialize_log_entry_header(const LogEntryHeader& h, std::span<std::byte> out) {
  std::memset(out.data(), 0, kLogEntryHeaderSize);
  put_signature(out, "loge", 4);
  store_le<uint32_t>(out.data() + 4, h.checksum);
  store_le<uint32_t>(out.data() + 8, h.entry_length);
  store_le<uint32_t>(out.data() + 12, h.tail);
  store_le<uint64_t>(out.data() + 16, h.sequence_number);
  store_le<uint32_t>(out.data() + 24, h.descriptor_count);
  store_guid(out.data() + 32, h.log_guid);
  store_le<uint64_t>(out.data() + 48, h.flushed_file_offset);
  store_le<uint64_t>(out.data() + 56, h.last_file_offset);
}

LogDescriptor parse_log_descriptor(std::span<const std::byte> b) {
  LogDescriptor d;
  if (signature_is(b, "zero", 4)) {
    d.kind = DescriptorKind::Zero;
    d.zero_length = load_le<uint64_t>(b.data() + 8);
  } else if (signature_is(b, "desc", 4)) {
    d.kind = DescriptorKind::Data;
    d.trailing_bytes = load_le<uint32_t>(b.data() + 4);
    d.leading_bytes = load_le<uint64_t>(b.data() + 8);
  }
  d.file_offset = load_le<uint64_t>(b.data() + 16);
  d.sequence_number = load_le<uint64_t>(b.data() + 24);
  return d;
}

void serialize_log_descriptor(const LogDescriptor& d, std::span<std::byte> out) {
  std::memset(out.data(), 0, kLogDescriptorSize);
  if (d.kind == DescriptorKind::Zero) {
    put_signature(out, "zero", 4);
    store_le<uint64_t>(out.data() + 8, d.zero_length);
  } else {
    put_signature(out, "desc", 4);
    store_le<uint32_t>(out.data() + 4, d.trailing_bytes);
    store_le<uint64_t>(out.data() + 8, d.leading_bytes);
  }
  store_le<uint64_t>(out.data() + 16, d.file_offset);
  store_le<uint64_t>(out.data() + 24, d.sequence_number);
}

// ---- BAT ----
bool is_known_payload_state(uint8_t s) { return s != 4; }  // 0-3, 5, 6, 7 (3 bits)

const char* payload_state_name(uint8_t s) {
  switch (s) {
    case 0: return "NOT_PRESENT";
    case 1: return "UNDEFINED";
    case 2: return "ZERO";
    case 3: return "UNMAPPED";
    case 5: return "UNMAPPED (0.95 value 5)";
    case 6: return "FULLY_PRESENT";
    case 7: return "PARTIALLY_PRESENT";
    default: return "reserved value 4";
  }
}

// ---- Metadata ----
bool has_metadata_signature(std::span<const std::byte> b) { return signature_is(b, "metadata", 8); }

std::vector<MetadataEntry> parse_metadata_table(std::span<const std::byte> b) {
  std::vector<MetadataEntry> entries;
  uint16_t n = load_le<uint16_t>(b.data() + 10);
  for (uint32_t i = 0; i < n && i < kMaxTableEntries; ++i) {
    const std::byte* e = b.data() + 32 + i * 32;
    MetadataEntry m;
    m.item_id = load_guid(e);
    m.offset = load_le<uint32_t>(e + 16);
    m.length = load_le<uint32_t>(e + 20);
    uint32_t flags = load_le<uint32_t>(e + 24);
    m.is_user = flags & 1;
    m.is_virtual_disk = flags & 2;
    m.is_required = flags & 4;
    entries.push_back(m);
  }
  return entries;
}

Bytes serialize_metadata_table(const std::vector<MetadataEntry>& entries) {
  Bytes b(kMetadataTableSize);
  put_signature(b, "metadata", 8);
  store_le<uint16_t>(b.data() + 10, static_cast<uint16_t>(entries.size()));
  for (size_t i = 0; i < entries.size(); ++i) {
    std::byte* e = b.data() + 32 + i * 32;
    store_guid(e, entries[i].item_id);
    store_le<uint32_t>(e + 16, entries[i].offset);
    store_le<uint32_t>(e + 20, entries[i].length);
    uint32_t flags =
        (entries[i].is_user ? 1u : 0u) | (entries[i].is_virtual_disk ? 2u : 0u) | (entries[i].is_required ? 4u : 0u);
    store_le<uint32_t>(e + 24, flags);
  }
  return b;
}

}  // namespace vhdkit::vhdx
