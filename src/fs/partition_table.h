// SPDX-License-Identifier: Apache-2.0
// Partition tables, read by hand from their specifications (MBR: the IBM PC layout with extended boot
// records; GPT: UEFI 2.10 chapter 5). Each reader says what partitions exist, which bytes the table's own
// structures occupy (always used), and whether the disk must be kept whole because the table cannot be
// trusted.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "fs/usage_map.h"

namespace vhdkit::fs::detail {

// What a partition's type says about how to read it.
enum class Content {
  Linux,    // may hold ext2/3/4, XFS, an LVM2 PV or swap: probe its content
  Lvm,      // an LVM partition type: probe for a PV label (and the rest, in case the type lies)
  Swap,     // a swap partition type: probe for swap (and ext, in case the type lies)
  Windows,  // NTFS, FAT or EFI System: probe its content (every reader is tried, as for Linux)
  Opaque,   // a type we do not read (LUKS, RAID, MSR, BIOS boot, LDM, unknown): all used
};

struct Partition {
  uint64_t offset = 0;  // bytes of the virtual disk
  uint64_t size = 0;
  std::string type;  // a name for reports: "Linux filesystem", "unknown 0x8f"
  Content content = Content::Opaque;
  std::string opaque_reason;  // for Content::Opaque: why it is kept whole
};

struct PartitionTable {
  std::string table;  // "gpt" or "mbr"
  std::vector<Partition> partitions;
  std::vector<ByteRange> metadata;  // the table's own sectors: MBR/EBRs, GPT headers and entry arrays
  std::vector<std::string> notes;
  // Set when the table cannot be trusted: then the whole disk is used, for this reason.
  std::optional<std::string> keep_disk_whole;
};

// The four primary entries of a classic MBR (sector 0) and its boot signature.
struct MbrEntry {
  uint8_t status = 0;      // 0x80 bootable, 0x00 not; anything else is not an MBR
  uint8_t type = 0;        // partition type (0 = empty)
  uint32_t first_lba = 0;  // relative to the disk (primary) or to the EBR / extended partition (logical)
  uint32_t sector_count = 0;
};
struct MbrSector {
  bool signature = false;  // bytes 510-511 are 0x55 0xAA
  MbrEntry entries[4];
};
MbrSector parse_mbr_sector(std::span<const std::byte, 512> sector);
// An MBR whose entries all look like partition entries (status 0x00/0x80, non-empty entries with a start
// and a length), and at least one non-empty entry.
bool plausible_mbr(const MbrSector& mbr);
bool has_protective_entry(const MbrSector& mbr);  // type 0xEE: the disk is GPT

// MBR with extended and logical partitions. `sector` = 512 (MBR addresses 512-byte sectors on every disk
// we meet; 4Kn MBR disks are rare and would need sector = 4096).
Result<PartitionTable> read_mbr(disk::VirtualDisk& disk, const MbrSector& mbr, uint64_t sector);

// GPT with logical blocks of `lba_size` bytes. nullopt when neither header is valid at this block size.
Result<std::optional<PartitionTable>> read_gpt(disk::VirtualDisk& disk, uint64_t lba_size, const MbrSector& mbr);

// Reads [offset, offset + buf.size()) of the disk; short of the end is an error of the caller.
Status read_exact(disk::VirtualDisk& disk, uint64_t offset, std::span<std::byte> buf);

}  // namespace vhdkit::fs::detail
