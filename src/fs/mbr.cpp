// SPDX-License-Identifier: Apache-2.0
// The classic PC partition table. Sector 0: 446 bytes of boot code, four 16-byte entries at 446, the
// signature 0x55 0xAA at 510. An entry: status (0x80 active), CHS first, type, CHS last, first LBA
// (little-endian u32, offset 8), sector count (u32, offset 12). CHS fields are ignored (LBA is what every
// modern system uses). An extended partition (type 0x05, 0x0F, 0x85) holds a chain of extended boot records
// (EBR), each a sector laid out like an MBR: entry 0 is the logical partition (start relative to this EBR),
// entry 1 points at the next EBR (start relative to the extended partition's start); the rest are zero.
#include <algorithm>
#include <array>
#include <set>

#include <fmt/format.h>

#include "core/bytes.h"
#include "fs/partition_table.h"
#include "fs/ranges.h"

namespace vhdkit::fs::detail {
namespace {

constexpr size_t kEntriesOffset = 446;
constexpr size_t kEntrySize = 16;
// Linux reads at most a few hundred logical partitions; a longer chain is damage (or a loop we missed).
constexpr int kMaxLogicalPartitions = 256;

bool is_extended(uint8_t type) { return type == 0x05 || type == 0x0F || type == 0x85; }

Partition describe(uint8_t type, uint64_t offset, uint64_t size) {
  Partition p;
  p.offset = offset;
  p.size = size;
  auto opaque = [&](std::string name, std::string why) {
    p.type = std::move(name);
    p.content = Content::Opaque;
    p.opaque_reason = std::move(why);
  };
  switch (type) {
    case 0x83:
      p.type = "Linux filesystem";
      p.content = Content::Linux;
      break;
    case 0x82:
      p.type = "Linux swap";
      p.content = Content::Swap;
      break;
    case 0x8E:
      p.type = "LVM";
      p.content = Content::Lvm;
      break;
    case 0xFD: opaque("Linux RAID", "Linux RAID: not read, kept whole"); break;
    case 0xE8: opaque("LUKS", "LUKS: encrypted, kept whole"); break;
    case 0xEF:
      p.type = "EFI System";
      p.content = Content::Windows;
      break;
    case 0x01:
    case 0x04:
    case 0x06:
    case 0x0B:
    case 0x0C:
    case 0x0E:
      p.type = "FAT";
      p.content = Content::Windows;
      break;
    case 0x07:
      p.type = "NTFS/exFAT";
      p.content = Content::Windows;
      break;
    case 0x42: opaque("Windows dynamic disk", "Windows dynamic disk: not read, kept whole"); break;
    default:
      opaque(fmt::format("unknown 0x{:02x}", type),
             fmt::format("partition type 0x{:02x} is not read, kept whole", type));
  }
  return p;
}

}  // namespace

Status read_exact(disk::VirtualDisk& disk, uint64_t offset, std::span<std::byte> buf) {
  auto end = checked_add(offset, buf.size());
  if (!end || *end > disk.virtual_size()) {
    return fail(ReturnCode::Failed, disk.path(), fmt::format("read at {} past the end of the disk", offset));
  }
  return disk.read(offset, buf);
}

MbrSector parse_mbr_sector(std::span<const std::byte, 512> s) {
  MbrSector m;
  m.signature = s[510] == std::byte{0x55} && s[511] == std::byte{0xAA};
  for (size_t i = 0; i < 4; ++i) {
    const std::byte* e = s.data() + kEntriesOffset + i * kEntrySize;
    m.entries[i].status = std::to_integer<uint8_t>(e[0]);
    m.entries[i].type = std::to_integer<uint8_t>(e[4]);
    m.entries[i].first_lba = load_le<uint32_t>(e + 8);
    m.entries[i].sector_count = load_le<uint32_t>(e + 12);
  }
  return m;
}

bool plausible_mbr(const MbrSector& mbr) {
  if (!mbr.signature) return false;
  int used = 0;
  for (const MbrEntry& e : mbr.entries) {
    if (e.status != 0x00 && e.status != 0x80) return false;
    if (e.type == 0) continue;
    if (e.first_lba == 0 || e.sector_count == 0) return false;
    ++used;
  }
  return used > 0;
}

bool has_protective_entry(const MbrSector& mbr) {
  return std::any_of(std::begin(mbr.entries), std::end(mbr.entries), [](const MbrEntry& e) { return e.type == 0xEE; });
}

Result<PartitionTable> read_mbr(disk::VirtualDisk& disk, const MbrSector& mbr, uint64_t sector) {
  PartitionTable t;
  t.table = "mbr";
  const uint64_t disk_size = disk.virtual_size();
  t.metadata.push_back({0, sector});

  // [first, first + count) sectors -> bytes, refused when outside the disk.
  auto to_bytes = [&](uint64_t first, uint64_t count) -> std::optional<ByteRange> {
    auto off = checked_mul(first, sector), len = checked_mul(count, sector);
    if (!off || !len) return std::nullopt;
    auto end = checked_add(*off, *len);
    if (!end || *end > disk_size) return std::nullopt;
    return ByteRange{*off, *len};
  };

  int extended_seen = 0;
  for (int i = 0; i < 4; ++i) {
    const MbrEntry& e = mbr.entries[i];
    if (e.type == 0) continue;
    auto r = to_bytes(e.first_lba, e.sector_count);
    if (!r) {
      t.keep_disk_whole = fmt::format("MBR partition {} extends past the end of the disk", i + 1);
      return t;
    }
    if (!is_extended(e.type)) {
      if (e.type == 0x42) t.keep_disk_whole = "Windows dynamic disk (its database lies outside the partitions)";
      t.partitions.push_back(describe(e.type, r->offset, r->length));
      continue;
    }
    if (++extended_seen > 1) {
      t.keep_disk_whole = "MBR has more than one extended partition";
      return t;
    }
    // Walk the EBR chain. Every EBR must lie inside the extended partition, be visited once, and describe a
    // logical partition inside the extended partition; otherwise the whole extended partition is kept.
    const uint64_t ext_first = e.first_lba, ext_end = uint64_t{e.first_lba} + e.sector_count;
    std::set<uint64_t> visited;
    std::vector<Partition> logical;
    std::optional<std::string> broken;
    uint64_t ebr = ext_first;
    while (true) {
      if (!visited.insert(ebr).second) {
        broken = fmt::format("the extended partition's chain loops back to sector {}", ebr);
        break;
      }
      if (static_cast<int>(visited.size()) > kMaxLogicalPartitions) {
        broken = fmt::format("the extended partition's chain is longer than {} entries", kMaxLogicalPartitions);
        break;
      }
      if (ebr < ext_first || ebr >= ext_end) {
        broken = fmt::format("an extended boot record at sector {} lies outside the extended partition", ebr);
        break;
      }
      std::array<std::byte, 512> buf{};
      VHDKIT_TRY(read_exact(disk, ebr * sector, buf));
      MbrSector s = parse_mbr_sector(buf);
      if (!s.signature) {
        broken = fmt::format("the extended boot record at sector {} has no signature", ebr);
        break;
      }
      t.metadata.push_back({ebr * sector, sector});
      const MbrEntry& l = s.entries[0];
      if (l.type != 0) {
        uint64_t first = ebr + l.first_lba, end = first + l.sector_count;  // < 2^34: no overflow
        if (l.first_lba == 0 || l.sector_count == 0 || end > ext_end || is_extended(l.type)) {
          broken = fmt::format("the logical partition of the extended boot record at sector {} is malformed", ebr);
          break;
        }
        logical.push_back(describe(l.type, first * sector, l.sector_count * sector));
      }
      const MbrEntry& next = s.entries[1];
      if (next.type == 0 && next.first_lba == 0) break;  // end of chain
      if (!is_extended(next.type) || next.first_lba == 0) {
        broken = fmt::format("the extended boot record at sector {} links to a malformed next record", ebr);
        break;
      }
      ebr = ext_first + next.first_lba;
    }
    if (broken) {
      t.notes.push_back("MBR: " + *broken + ": the extended partition is kept whole");
      Partition p;
      p.offset = *checked_mul(ext_first, sector);
      p.size = *checked_mul(e.sector_count, sector);
      p.type = "extended";
      p.content = Content::Opaque;
      p.opaque_reason = *broken;
      t.partitions.push_back(std::move(p));
    } else {
      // The space of the extended partition between its logical partitions holds only EBRs (in metadata).
      for (Partition& p : logical) t.partitions.push_back(std::move(p));
    }
  }
  return t;
}

}  // namespace vhdkit::fs::detail
