// SPDX-License-Identifier: Apache-2.0
// The GUID Partition Table (UEFI 2.10, 5.3). LBA 0 holds a protective (or hybrid) MBR; LBA 1 the primary
// header; the entry array follows it; the backup entry array and the backup header (last LBA) end the disk.
// Header fields (little-endian): Signature "EFI PART" @0, Revision @8, HeaderSize @12, HeaderCRC32 @16
// (CRC-32 over HeaderSize bytes with this field zero), Reserved @20, MyLBA @24, AlternateLBA @32,
// FirstUsableLBA @40, LastUsableLBA @48, DiskGUID @56, PartitionEntryLBA @72, NumberOfPartitionEntries @80,
// SizeOfPartitionEntry @84 (128 * 2^n), PartitionEntryArrayCRC32 @88. An entry: PartitionTypeGUID @0,
// UniquePartitionGUID @16, StartingLBA @32, EndingLBA @40 (inclusive), Attributes @48, PartitionName @56.
#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>

#include <fmt/format.h>
#include <boost/crc.hpp>

#include "core/bytes.h"
#include "core/guid.h"
#include "fs/partition_table.h"
#include "fs/ranges.h"

namespace vhdkit::fs::detail {
namespace {

// Bounds that no real table reaches, so that a damaged header cannot make us allocate or loop wildly.
constexpr uint64_t kMaxEntryArrayBytes = 16u << 20;
constexpr uint32_t kMaxEntrySize = 4096;

struct Header {
  uint64_t my_lba = 0, alternate_lba = 0, first_usable = 0, last_usable = 0, entries_lba = 0;
  uint32_t entry_count = 0, entry_size = 0, entries_crc = 0;
  uint64_t array_bytes = 0;
};

uint32_t crc32(std::span<const std::byte> data) {
  boost::crc_32_type crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

struct TypeName {
  std::string_view guid;  // text form; stored mixed-endian like every UEFI GUID
  std::string_view name;
  Content content;
  std::string_view reason;  // for Opaque
};
constexpr TypeName kTypes[] = {
    {"0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem", Content::Linux, ""},
    {"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "Linux root (x86-64)", Content::Linux, ""},
    {"44479540-F297-41B2-9AF7-D131D5F0458A", "Linux root (x86)", Content::Linux, ""},
    {"B921B045-1DF0-41C3-AF44-4C6F280D3FAE", "Linux root (ARM64)", Content::Linux, ""},
    {"933AC7E1-2EB4-4F13-B844-0E14E2AEF915", "Linux home", Content::Linux, ""},
    {"3B8F8425-20E0-4F3B-907F-1A25A76F98E8", "Linux server data", Content::Linux, ""},
    {"BC13C2FF-59E6-4262-A352-B275FD6F7172", "Linux extended boot", Content::Linux, ""},
    {"4D21B016-B534-45C2-A9FB-5C16E091FD2D", "Linux variable data", Content::Linux, ""},
    {"7EC6F557-3BC5-4ACA-B293-16EF5DF639D1", "Linux temporary data", Content::Linux, ""},
    {"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap", Content::Swap, ""},
    {"E6D6D379-F507-44C2-A23C-238F2A3DF928", "LVM", Content::Lvm, ""},
    {"A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID", Content::Opaque, "Linux RAID: not read, kept whole"},
    {"CA7D7CCB-63ED-4C53-861C-1742536059CC", "Linux LUKS", Content::Opaque, "LUKS: encrypted, kept whole"},
    {"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System", Content::Windows, ""},
    {"21686148-6449-6E6F-744E-656564454649", "BIOS boot", Content::Opaque,
     "BIOS boot: holds a boot loader, kept whole"},
    {"E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "Microsoft reserved", Content::Opaque, "Microsoft reserved: kept whole"},
    {"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data", Content::Windows, ""},
    {"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", "Windows recovery", Content::Windows, ""},
    {"5808C8AA-7E8F-42E0-85D2-E1E90434CFB3", "Windows LDM metadata", Content::Opaque,
     "Windows dynamic disk: not read, kept whole"},
    {"AF9B60A0-1431-4F62-BC68-3311714A69AD", "Windows LDM data", Content::Opaque,
     "Windows dynamic disk: not read, kept whole"},
};

Partition describe(const Guid& type, uint64_t offset, uint64_t size) {
  Partition p;
  p.offset = offset;
  p.size = size;
  for (const TypeName& t : kTypes) {
    if (Guid::parse_ms(t.guid) == type) {
      p.type = std::string(t.name);
      p.content = t.content;
      p.opaque_reason = std::string(t.reason);
      return p;
    }
  }
  p.type = "unknown " + type.to_string_ms();
  p.content = Content::Opaque;
  p.opaque_reason = "partition type " + type.to_string_ms() + " is not read, kept whole";
  return p;
}

// Validates the header at `lba` and its entry array; returns the header and the array, or a sentence.
struct Table {
  Header h;
  std::vector<std::byte> entries;
};
Result<std::expected<Table, std::string>> read_table(disk::VirtualDisk& disk, uint64_t lba_size, uint64_t lba,
                                                     uint64_t disk_lbas) {
  using Checked = std::expected<Table, std::string>;
  auto bad = [](std::string why) { return Result<Checked>(Checked(std::unexpected(std::move(why)))); };
  if (lba >= disk_lbas) return bad(fmt::format("header LBA {} is past the end of the disk", lba));
  std::vector<std::byte> s(lba_size);
  VHDKIT_TRY(read_exact(disk, lba * lba_size, s));
  if (std::memcmp(s.data(), "EFI PART", 8) != 0) return bad("no signature");
  uint32_t header_size = load_le<uint32_t>(&s[12]);
  if (header_size < 92 || header_size > lba_size) return bad(fmt::format("header size {}", header_size));
  uint32_t stored = load_le<uint32_t>(&s[16]);
  std::vector<std::byte> copy(s.begin(), s.begin() + header_size);
  std::memset(&copy[16], 0, 4);
  if (crc32(copy) != stored) return bad("header CRC32 mismatch");
  Header h;
  h.my_lba = load_le<uint64_t>(&s[24]);
  h.alternate_lba = load_le<uint64_t>(&s[32]);
  h.first_usable = load_le<uint64_t>(&s[40]);
  h.last_usable = load_le<uint64_t>(&s[48]);
  h.entries_lba = load_le<uint64_t>(&s[72]);
  h.entry_count = load_le<uint32_t>(&s[80]);
  h.entry_size = load_le<uint32_t>(&s[84]);
  h.entries_crc = load_le<uint32_t>(&s[88]);
  if (h.my_lba != lba) return bad(fmt::format("MyLBA {} where {} was expected", h.my_lba, lba));
  if (h.first_usable > h.last_usable || h.last_usable >= disk_lbas || h.first_usable < 2) {
    return bad(fmt::format("usable LBAs {}-{} do not fit the disk", h.first_usable, h.last_usable));
  }
  if (h.entry_size < 128 || h.entry_size > kMaxEntrySize || !is_power_of_two(h.entry_size)) {
    return bad(fmt::format("entry size {}", h.entry_size));
  }
  h.array_bytes = uint64_t{h.entry_count} * h.entry_size;  // both < 2^32: fits
  if (h.array_bytes > kMaxEntryArrayBytes) return bad(fmt::format("{} entries", h.entry_count));
  uint64_t array_lbas = (h.array_bytes + lba_size - 1) / lba_size;
  auto array_end = checked_add(h.entries_lba, array_lbas);
  if (h.entries_lba < 1 || !array_end || *array_end > disk_lbas) return bad("entry array outside the disk");
  // The spec keeps the entry array and the header out of the usable space.
  bool array_in_usable = h.entries_lba <= h.last_usable && *array_end > h.first_usable;
  bool header_in_usable = lba >= h.first_usable && lba <= h.last_usable;
  bool array_on_header = h.entries_lba <= lba && lba < *array_end;
  if (array_in_usable || header_in_usable || array_on_header)
    return bad("entry array or header inside the usable LBAs");
  std::vector<std::byte> entries(array_lbas * lba_size);
  VHDKIT_TRY(read_exact(disk, h.entries_lba * lba_size, entries));
  entries.resize(h.array_bytes);
  if (crc32(entries) != h.entries_crc) return bad("entry array CRC32 mismatch");
  return Result<Checked>(Checked(Table{h, std::move(entries)}));
}

}  // namespace

Result<std::optional<PartitionTable>> read_gpt(disk::VirtualDisk& disk, uint64_t lba_size, const MbrSector& mbr) {
  const uint64_t disk_lbas = disk.virtual_size() / lba_size;
  if (disk_lbas < 4) return std::optional<PartitionTable>{};
  PartitionTable t;
  t.table = "gpt";

  VHDKIT_ASSIGN(auto primary, read_table(disk, lba_size, 1, disk_lbas));
  // The backup is where the primary says, else (primary unreadable) at the last LBA.
  uint64_t backup_lba = primary && primary->h.alternate_lba != 1 ? primary->h.alternate_lba : disk_lbas - 1;
  VHDKIT_ASSIGN(auto backup, read_table(disk, lba_size, backup_lba, disk_lbas));
  if (!backup && primary && backup_lba != disk_lbas - 1) {
    backup_lba = disk_lbas - 1;
    VHDKIT_ASSIGN(backup, read_table(disk, lba_size, backup_lba, disk_lbas));
  }
  if (!primary && !backup) return std::optional<PartitionTable>{};

  if (primary && !backup) {
    t.notes.push_back("GPT backup header damaged or missing (" + backup.error() + "): used the primary");
  } else if (!primary) {
    t.notes.push_back("GPT primary header damaged (" + primary.error() + "): used the backup");
  } else if (primary->entries != backup->entries || primary->h.first_usable != backup->h.first_usable ||
             primary->h.last_usable != backup->h.last_usable) {
    // Two valid tables that disagree: we cannot know which one the guest uses.
    t.keep_disk_whole = "the GPT primary and backup tables differ";
  }
  const Table& used = primary ? *primary : *backup;
  const Header& h = used.h;

  // Always used: LBA 0-1 and the space before the first usable LBA (primary header and array), the space
  // after the last usable LBA (backup array and header), and both arrays wherever the headers put them.
  t.metadata.push_back({0, h.first_usable * lba_size});
  t.metadata.push_back({(h.last_usable + 1) * lba_size, (disk_lbas - h.last_usable - 1) * lba_size});
  for (const auto* tab : {&primary, &backup}) {
    if (*tab) {
      t.metadata.push_back({(*tab)->h.entries_lba * lba_size, round_up((*tab)->h.array_bytes, lba_size)});
      t.metadata.push_back({(*tab)->h.my_lba * lba_size, lba_size});
    }
  }
  t.metadata.push_back({(disk_lbas - 1) * lba_size, lba_size});

  int hybrid = 0;
  for (const MbrEntry& e : mbr.entries) hybrid += (e.type != 0 && e.type != 0xEE);
  if (hybrid) t.notes.push_back("hybrid MBR: used the GPT");

  for (uint32_t i = 0; i < h.entry_count; ++i) {
    const std::byte* e = used.entries.data() + uint64_t{i} * h.entry_size;
    Guid type;
    std::memcpy(type.bytes.data(), e, 16);
    if (type.is_zero()) continue;
    uint64_t first = load_le<uint64_t>(e + 32), last = load_le<uint64_t>(e + 40);
    if (first > last || first < h.first_usable || last > h.last_usable) {
      t.keep_disk_whole = fmt::format("GPT entry {} (LBAs {}-{}) lies outside the usable LBAs", i + 1, first, last);
      return t;
    }
    t.partitions.push_back(describe(type, first * lba_size, (last - first + 1) * lba_size));
  }
  return std::optional<PartitionTable>(std::move(t));
}

}  // namespace vhdkit::fs::detail
