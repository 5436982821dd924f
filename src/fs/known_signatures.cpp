// SPDX-License-Identifier: Apache-2.0
// One table: each row names a volume type, where its signature lies (from the window's start, or from a
// place computed from the window's size) and its bytes. Sources: LUKS1/LUKS2 on-disk format specifications
// (magic "LUKS\xba\xbe" at 0), Linux md/md_p.h (0.90: the last 64 KiB-aligned 64 KiB of the device; 1.0:
// 8 KiB from the end, 4 KiB aligned; 1.1: 0; 1.2: 4 KiB; magic 0xa92b4efc, then the major version: 0 or 1), btrfs
// (superblock at 64 KiB, magic "_BHRfS_M" at its byte 64), ZFS (uberblocks of labels 0 and 1 at 128 KiB and 384 KiB,
// magic 0x00bab10c in either byte order), bcache (superblock at 4 KiB, 16-byte magic at its byte 24), ReFS and
// BitLocker and exFAT (their OEM names at byte 3 of the boot sector).
#include "fs/known_signatures.h"

#include <array>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "fs/partition_table.h"

namespace vhdkit::fs::detail {
namespace {

enum class Where { FromStart, Md090, Md10 };

struct Signature {
  std::string_view name;
  Where where;
  uint64_t offset;  // from the window's start (FromStart) or from the computed superblock
  std::string_view magic;
  std::string_view reason;
};

using namespace std::string_view_literals;

constexpr std::array kSignatures = {
    Signature{"luks", Where::FromStart, 0, "LUKS\xba\xbe\x00\x01"sv, "LUKS1: encrypted, kept whole"},
    Signature{"luks", Where::FromStart, 0, "LUKS\xba\xbe\x00\x02"sv, "LUKS2: encrypted, kept whole"},
    Signature{"bitlocker", Where::FromStart, 3, "-FVE-FS-"sv, "BitLocker: encrypted, kept whole"},
    Signature{"refs", Where::FromStart, 3, "ReFS\0\0\0\0"sv, "ReFS: not read yet, kept whole"},
    Signature{"exfat", Where::FromStart, 3, "EXFAT   "sv, "exFAT: not read yet, kept whole"},
    Signature{"linux_raid_member", Where::FromStart, 0, "\xfc\x4e\x2b\xa9\x01\x00\x00\x00"sv,
              "MD RAID member (1.1 superblock): kept whole"},
    Signature{"linux_raid_member", Where::FromStart, 4096, "\xfc\x4e\x2b\xa9\x01\x00\x00\x00"sv,
              "MD RAID member (1.2 superblock): kept whole"},
    Signature{"bcache", Where::FromStart, 4096 + 24,
              "\xc6\x85\x73\xf6\x4e\x1a\x45\xca\x82\x65\xf5\x7f\x48\xba\x6d\x81"sv, "bcache: not read yet, kept whole"},
    Signature{"btrfs", Where::FromStart, 65536 + 64, "_BHRfS_M"sv, "btrfs: not read yet, kept whole"},
    Signature{"linux_raid_member", Where::Md090, 0, "\xfc\x4e\x2b\xa9\x00\x00\x00\x00"sv,
              "MD RAID member (0.90 superblock): kept whole"},
    Signature{"linux_raid_member", Where::Md090, 0, "\xa9\x2b\x4e\xfc\x00\x00\x00\x00"sv,
              "MD RAID member (0.90 superblock, big-endian): kept whole"},
    Signature{"linux_raid_member", Where::Md10, 0, "\xfc\x4e\x2b\xa9\x01\x00\x00\x00"sv,
              "MD RAID member (1.0 superblock): kept whole"},
};

// Where a superblock computed from the window's size starts, or nullopt when the window is too small.
std::optional<uint64_t> base_of(Where w, uint64_t size) {
  const uint64_t sectors = size / 512;
  switch (w) {
    case Where::FromStart: return 0;
    case Where::Md090:  // MD_NEW_SIZE_SECTORS: the last 64 KiB block, aligned to 64 KiB
      if (sectors < 256) return std::nullopt;
      return ((sectors & ~uint64_t{127}) - 128) * 512;
    case Where::Md10:  // 8 KiB before the end, aligned down to 4 KiB
      if (sectors < 32) return std::nullopt;
      return ((sectors - 16) & ~uint64_t{7}) * 512;
  }
  return std::nullopt;
}

// ZFS: any uberblock slot (1 KiB apart at the smallest ashift) of label 0 or 1 carrying the magic.
constexpr uint64_t kZfsMagic = 0x00bab10cull;
Result<bool> zfs_label(disk::VirtualDisk& d, uint64_t offset, uint64_t size) {
  for (uint64_t label : {uint64_t{0}, uint64_t{256} << 10}) {
    const uint64_t start = label + (uint64_t{128} << 10), len = uint64_t{128} << 10;
    if (start + len > size) break;
    std::vector<std::byte> b(len);
    VHDKIT_TRY(read_exact(d, offset + start, b));
    for (uint64_t slot = 0; slot < len; slot += 1024) {
      if (load_le<uint64_t>(b.data() + slot) == kZfsMagic || load_be<uint64_t>(b.data() + slot) == kZfsMagic)
        return true;
    }
  }
  return false;
}

}  // namespace

Result<std::optional<VolumeScan>> find_known_signature(disk::VirtualDisk& d, uint64_t offset, uint64_t size) {
  for (const Signature& s : kSignatures) {
    auto base = base_of(s.where, size);
    if (!base) continue;
    const uint64_t at = *base + s.offset;
    if (at > size || s.magic.size() > size - at) continue;
    std::vector<std::byte> b(s.magic.size());
    VHDKIT_TRY(read_exact(d, offset + at, b));
    if (std::memcmp(b.data(), s.magic.data(), b.size()) == 0)
      return std::optional(kept_whole(offset, size, std::string(s.name), std::string(s.reason)));
  }
  VHDKIT_ASSIGN(bool zfs, zfs_label(d, offset, size));
  if (zfs) return std::optional(kept_whole(offset, size, "zfs_member", "ZFS: not read, kept whole"));
  return std::optional<VolumeScan>();
}

}  // namespace vhdkit::fs::detail
