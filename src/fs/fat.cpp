// SPDX-License-Identifier: Apache-2.0
// FAT12/16/32 from Microsoft's specification (fatgen103, "FAT: General Overview of On-Disk Format").
// Boot sector (little-endian): BPB_BytsPerSec u16 @11, BPB_SecPerClus u8 @13, BPB_RsvdSecCnt u16 @14,
// BPB_NumFATs u8 @16, BPB_RootEntCnt u16 @17, BPB_TotSec16 u16 @19, BPB_Media u8 @21, BPB_FATSz16 u16 @22,
// BPB_TotSec32 u32 @32; FAT12/16: BS_Reserved1 @37 (Windows' and Linux's "dirty" bit 0); FAT32:
// BPB_FATSz32 u32 @36, BPB_ExtFlags u16 @40 (bit 7: only FAT number bits 0-3 is active), BPB_FSVer u16 @42,
// BPB_RootClus u32 @44, BPB_FSInfo u16 @48, BPB_BkBootSec u16 @50, BS_Reserved1 @65. The cluster count alone
// decides the type (< 4085 FAT12, < 65525 FAT16, else FAT32). FAT[1]'s top bits on FAT16/32 are the
// clean-shutdown (set = clean) and no-hard-error bits.
//
// Used = the reserved sectors, every FAT, the FAT12/16 root directory, every cluster whose entry in the
// (active) FAT is not 0, and everything past the last cluster. All used when any field is out of bounds,
// the FAT copies disagree, the backup boot sector or FSInfo is wrong, or the volume is marked dirty.
#include "fs/fat.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/bytes.h"
#include "fs/partition_table.h"
#include "fs/ranges.h"

namespace vhdkit::fs::detail {
namespace {

enum class FatType { Fat12, Fat16, Fat32 };

struct Geometry {
  FatType type = FatType::Fat12;
  uint64_t sector = 0, cluster = 0;  // bytes
  uint64_t reserved = 0, fats = 0;   // sectors, count
  uint64_t fat_sectors = 0, root_sectors = 0, total_sectors = 0;
  uint64_t clusters = 0;    // data clusters, numbered 2 .. clusters + 1
  uint64_t data_start = 0;  // bytes from the volume's start
  uint8_t media = 0;
  uint8_t state = 0;          // BS_Reserved1
  uint32_t root_cluster = 0;  // FAT32
  uint16_t ext_flags = 0, fsinfo = 0, backup_boot = 0;
};

bool pow2(uint64_t v) { return v && !(v & (v - 1)); }

std::string type_name(FatType t) {
  switch (t) {
    case FatType::Fat12: return "fat12";
    case FatType::Fat16: return "fat16";
    case FatType::Fat32: return "fat32";
  }
  return "fat";
}

// The BPB's fields, each bounded; the error says which one is not.
struct Parsed {
  std::optional<Geometry> geometry;
  std::string error;
};

Parsed parse_bpb(std::span<const std::byte> head) {
  auto bad = [](std::string why) { return Parsed{std::nullopt, std::move(why)}; };
  if (head.size() < 512) return bad("the boot sector is short");
  const std::byte* b = head.data();
  if (load_le<uint16_t>(b + 510) != 0xAA55) return bad("no boot signature");
  const uint8_t j = static_cast<uint8_t>(b[0]);
  if (!(j == 0xE9 || (j == 0xEB && static_cast<uint8_t>(b[2]) == 0x90))) return bad("no jump instruction");
  for (const char* oem : {"NTFS    ", "EXFAT   ", "-FVE-FS-"}) {
    if (std::memcmp(b + 3, oem, 8) == 0) return bad("not FAT");
  }
  Geometry g;
  g.sector = load_le<uint16_t>(b + 11);
  if (g.sector < 512 || g.sector > 4096 || !pow2(g.sector)) return bad(fmt::format("{} bytes per sector", g.sector));
  const uint64_t spc = static_cast<uint8_t>(b[13]);
  if (!pow2(spc)) return bad(fmt::format("{} sectors per cluster", spc));
  g.cluster = g.sector * spc;
  g.reserved = load_le<uint16_t>(b + 14);
  if (g.reserved == 0) return bad("no reserved sectors");
  g.fats = static_cast<uint8_t>(b[16]);
  if (g.fats < 1 || g.fats > 4) return bad(fmt::format("{} FATs", g.fats));
  const uint64_t root_entries = load_le<uint16_t>(b + 17);
  g.media = static_cast<uint8_t>(b[21]);
  if (g.media != 0xF0 && g.media < 0xF8) return bad(fmt::format("media byte 0x{:x}", g.media));
  const uint64_t fat16 = load_le<uint16_t>(b + 22), fat32 = load_le<uint32_t>(b + 36);
  g.fat_sectors = fat16 ? fat16 : fat32;
  if (g.fat_sectors == 0) return bad("the FAT size is 0");
  const uint64_t tot16 = load_le<uint16_t>(b + 19), tot32 = load_le<uint32_t>(b + 32);
  g.total_sectors = tot16 ? tot16 : tot32;
  if (g.total_sectors == 0) return bad("the volume has no sectors");
  g.root_sectors = (root_entries * 32 + g.sector - 1) / g.sector;
  // All in sectors; each term is below 2^40, so no sum overflows.
  const uint64_t meta = g.reserved + g.fats * g.fat_sectors + g.root_sectors;
  if (meta >= g.total_sectors) return bad("the reserved sectors, FATs and root directory fill the volume");
  g.clusters = (g.total_sectors - meta) / spc;
  if (g.clusters == 0) return bad("the volume has no clusters");
  g.data_start = meta * g.sector;
  g.type = g.clusters < 4085 ? FatType::Fat12 : g.clusters < 65525 ? FatType::Fat16 : FatType::Fat32;
  if (g.type == FatType::Fat32) {
    if (fat16 != 0 || tot16 != 0 || root_entries != 0)
      return bad("a FAT32 cluster count with FAT12/16 fields (16-bit FAT size, total sectors or root entries)");
    if (load_le<uint16_t>(b + 42) != 0) return bad("FAT32 version is not 0.0");
    // FAT32 entries hold 28 bits; 0x0FFFFFF7 and above are reserved values.
    if (g.clusters > 0x0FFFFFF5) return bad("too many clusters for FAT32");
    g.ext_flags = load_le<uint16_t>(b + 40);
    g.root_cluster = load_le<uint32_t>(b + 44);
    g.fsinfo = load_le<uint16_t>(b + 48);
    g.backup_boot = load_le<uint16_t>(b + 50);
    g.state = static_cast<uint8_t>(b[65]);
    if ((g.ext_flags & 0x80) && (g.ext_flags & 0x0F) >= g.fats) return bad("the active FAT does not exist");
    if (g.root_cluster < 2 || g.root_cluster > g.clusters + 1) return bad("the root directory cluster is out of range");
  } else {
    if (fat16 == 0 || root_entries == 0)
      return bad("a FAT12/16 cluster count without a 16-bit FAT size or a root directory");
    g.state = static_cast<uint8_t>(b[37]);
  }
  // The FAT must hold an entry for every cluster (and the two reserved entries).
  const uint64_t entries = g.clusters + 2;
  const uint64_t fat_bytes_needed =
      g.type == FatType::Fat12 ? (entries * 3 + 1) / 2 : entries * (g.type == FatType::Fat16 ? 2 : 4);
  if (g.fat_sectors * g.sector < fat_bytes_needed)
    return bad(fmt::format("the FAT ({} sectors) is too small for {} clusters", g.fat_sectors, g.clusters));
  return Parsed{g, {}};
}

uint32_t entry_at(const std::vector<uint8_t>& fat, FatType t, uint64_t n) {
  switch (t) {
    case FatType::Fat12: {
      const uint64_t o = n + n / 2;
      const uint32_t v = fat[o] | (uint32_t{fat[o + 1]} << 8);
      return (n & 1) ? v >> 4 : v & 0xFFF;
    }
    case FatType::Fat16: return fat[2 * n] | (uint32_t{fat[2 * n + 1]} << 8);
    case FatType::Fat32:
      return (fat[4 * n] | (uint32_t{fat[4 * n + 1]} << 8) | (uint32_t{fat[4 * n + 2]} << 16) |
              (uint32_t{fat[4 * n + 3]} << 24)) &
             0x0FFFFFFFu;
  }
  return 0;
}

}  // namespace

bool looks_like_fat(std::span<const std::byte> head) {
  if (head.size() < 512) return false;
  // Recognised when the basic fields are plausible; read_fat says why the rest is not.
  Parsed p = parse_bpb(head);
  if (p.geometry) return true;
  const std::byte* b = head.data();
  const uint8_t j = static_cast<uint8_t>(b[0]);
  const uint64_t bps = load_le<uint16_t>(b + 11);
  const uint8_t media = static_cast<uint8_t>(b[21]);
  return load_le<uint16_t>(b + 510) == 0xAA55 && (j == 0xE9 || (j == 0xEB && static_cast<uint8_t>(b[2]) == 0x90)) &&
         std::memcmp(b + 3, "NTFS    ", 8) != 0 && std::memcmp(b + 3, "EXFAT   ", 8) != 0 &&
         std::memcmp(b + 3, "-FVE-FS-", 8) != 0 && bps >= 512 && bps <= 4096 && pow2(bps) &&
         pow2(static_cast<uint8_t>(b[13])) && load_le<uint16_t>(b + 14) != 0 && b[16] != std::byte{0} &&
         (media == 0xF0 || media >= 0xF8) && (load_le<uint16_t>(b + 19) != 0 || load_le<uint32_t>(b + 32) != 0) &&
         (load_le<uint16_t>(b + 22) != 0 || load_le<uint32_t>(b + 36) != 0);
}

Result<VolumeScan> read_fat(disk::VirtualDisk& disk, std::span<const std::byte> head, uint64_t offset, uint64_t size) {
  Parsed p = parse_bpb(head);
  if (!p.geometry) return kept_whole(offset, size, "fat", "the FAT boot sector is invalid: " + p.error);
  const Geometry& g = *p.geometry;
  const std::string name = type_name(g.type);
  auto whole = [&](std::string why) { return kept_whole(offset, size, name, std::move(why)); };

  const uint64_t vol_bytes = g.total_sectors * g.sector;  // < 2^44
  if (vol_bytes > size) {
    return whole(fmt::format("the volume ({} sectors of {} bytes) is larger than its partition ({} bytes)",
                             g.total_sectors, g.sector, size));
  }
  if (g.state & 0x01) return whole("the volume is marked dirty (not cleanly unmounted; run fsck.fat or chkdsk)");

  if (g.type == FatType::Fat32) {
    if (g.backup_boot != 0 && g.backup_boot != 0xFFFF) {
      if (g.backup_boot >= g.reserved) return whole("the backup boot sector lies outside the reserved sectors");
      std::vector<std::byte> backup(g.sector);
      VHDKIT_TRY(read_exact(disk, offset + g.backup_boot * g.sector, backup));
      // The BPB proper (bytes 11-63) gives the geometry: a backup that disagrees makes the volume doubtful.
      if (std::memcmp(backup.data() + 11, head.data() + 11, 53) != 0 ||
          load_le<uint16_t>(backup.data() + 510) != 0xAA55)
        return whole("the backup boot sector disagrees with the boot sector");
    }
    if (g.fsinfo != 0 && g.fsinfo != 0xFFFF) {
      if (g.fsinfo >= g.reserved || g.fsinfo == g.backup_boot) return whole("the FSInfo sector is out of place");
      std::vector<std::byte> fsi(g.sector);
      VHDKIT_TRY(read_exact(disk, offset + g.fsinfo * g.sector, fsi));
      if (load_le<uint32_t>(fsi.data()) != 0x41615252u || load_le<uint32_t>(fsi.data() + 484) != 0x61417272u ||
          load_le<uint32_t>(fsi.data() + 508) != 0xAA550000u)
        return whole("the FSInfo sector's signatures are wrong");
    }
  }

  // The FAT bytes that hold entries 0 .. clusters + 1; every copy must agree on them (unless FAT32 mirroring
  // is off, when only the active copy counts).
  const uint64_t entries = g.clusters + 2;
  const uint64_t fat_len =
      g.type == FatType::Fat12 ? (entries * 3 + 1) / 2 : entries * (g.type == FatType::Fat16 ? 2 : 4);
  const uint64_t fat_stride = g.fat_sectors * g.sector;
  const bool mirrored = !(g.type == FatType::Fat32 && (g.ext_flags & 0x80));
  const uint64_t active = mirrored ? 0 : (g.ext_flags & 0x0F);
  const uint64_t fat0 = offset + g.reserved * g.sector + active * fat_stride;

  VolumeScan s;
  s.filesystem = name;
  s.state = Volume::State::Read;
  s.used.push_back({offset, g.data_start});  // boot and reserved sectors, the FATs, the FAT12/16 root directory
  constexpr size_t kMaxRuns = size_t{1} << 21;
  uint64_t min_gap = 0;
  auto add_cluster_run = [&](uint64_t first, uint64_t count) {  // clusters numbered from 2
    ByteRange r{offset + g.data_start + (first - 2) * g.cluster, count * g.cluster};
    if (!s.used.empty() && r.offset - s.used.back().end() < min_gap) {
      s.used.back().length = r.end() - s.used.back().offset;
    } else {
      s.used.push_back(r);
    }
    if (s.used.size() > kMaxRuns) {
      min_gap = min_gap ? min_gap * 2 : 2 * g.cluster;
      coalesce_gaps(s.used, min_gap);
    }
  };

  // In chunks of whole entries (FAT12: 2 entries per 3 bytes), so a FAT32 of millions of clusters needs
  // no more memory than a chunk per copy.
  constexpr uint64_t kChunk = 3u << 18;  // 768 KiB: a multiple of 3 and of 4
  std::vector<uint8_t> buf(std::min(kChunk, fat_len + 1)), other(buf.size());
  uint64_t run_start = 0;
  bool in_run = false;
  for (uint64_t pos = 0; pos < fat_len; pos += kChunk) {
    const uint64_t n = std::min(kChunk, fat_len - pos);
    std::fill(buf.begin(), buf.end(), 0);
    VHDKIT_TRY(read_exact(disk, fat0 + pos, std::as_writable_bytes(std::span(buf.data(), n))));
    if (mirrored) {
      for (uint64_t c = 1; c < g.fats; ++c) {
        VHDKIT_TRY(read_exact(disk, offset + g.reserved * g.sector + c * fat_stride + pos,
                              std::as_writable_bytes(std::span(other.data(), n))));
        if (std::memcmp(buf.data(), other.data(), n) != 0)
          return whole(fmt::format("FAT copies 1 and {} disagree", c + 1));
      }
    }
    // FAT12 and FAT16 fit one chunk; FAT32's 4-byte entries never straddle two.
    const uint64_t first_entry = g.type == FatType::Fat32 ? pos / 4 : 0;
    const uint64_t last_entry = g.type == FatType::Fat32 ? std::min(entries, (pos + n) / 4) : entries;
    for (uint64_t e = first_entry; e < last_entry; ++e) {
      const uint32_t v = entry_at(buf, g.type, e - first_entry);
      if (e == 0) {
        if ((v & 0xFF) != g.media) return whole("FAT[0] does not carry the media byte");
        continue;
      }
      if (e == 1) {
        if (g.type == FatType::Fat16 && ((v & 0x8000) == 0 || (v & 0x4000) == 0))
          return whole((v & 0x8000) == 0 ? "the volume is marked dirty (FAT[1] clean-shutdown bit is clear)"
                                         : "the volume recorded disk errors (FAT[1] hard-error bit is clear)");
        if (g.type == FatType::Fat32 && ((v & 0x08000000) == 0 || (v & 0x04000000) == 0))
          return whole((v & 0x08000000) == 0 ? "the volume is marked dirty (FAT[1] clean-shutdown bit is clear)"
                                             : "the volume recorded disk errors (FAT[1] hard-error bit is clear)");
        continue;
      }
      const bool used = v != 0;
      if (used && !in_run) {
        run_start = e;
        in_run = true;
      } else if (!used && in_run) {
        add_cluster_run(run_start, e - run_start);
        in_run = false;
      }
    }
    if (last_entry >= entries) break;
  }
  if (in_run) add_cluster_run(run_start, entries - run_start);
  if (g.type == FatType::Fat32) {
    // The root directory's first cluster must be allocated; a free one means the FAT is not what we think.
    const ByteRange root{offset + g.data_start + (uint64_t{g.root_cluster} - 2) * g.cluster, g.cluster};
    if (covered_bytes(merge_ranges(s.used), root.offset, root.end()) != root.length)
      return whole("the root directory's cluster is free in the FAT");
  }
  if (min_gap) {
    s.notes.push_back(
        fmt::format("the FAT of the partition at {} is fragmented: free gaps shorter than {} bytes are counted as used",
                    offset, min_gap));
  }
  // Past the last cluster (the remainder of the volume and of the partition): it may hold anything.
  const uint64_t data_end = g.data_start + g.clusters * g.cluster;
  if (data_end < size) s.used.push_back({offset + data_end, size - data_end});
  return s;
}

}  // namespace vhdkit::fs::detail
