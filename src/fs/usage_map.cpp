// SPDX-License-Identifier: Apache-2.0
// map_usage: partition table -> one reader per partition -> the merged used map. The rules that keep it
// conservative live here: what the tables occupy, the boot-loader area, overlapping partitions, tables that
// contradict each other.
#include "fs/usage_map.h"

#include <algorithm>
#include <array>
#include <new>

#include <fmt/format.h>

#include "fs/known_signatures.h"
#include "fs/partition_table.h"
#include "fs/ranges.h"
#include "fs/readers.h"
#include "fs/volume_scan.h"

namespace vhdkit::fs {
namespace {

using namespace detail;

// The start of a partitioned disk before its first partition holds boot loaders (GRUB embeds its core
// image after an MBR; other tools hide data there): always used. 1 MiB is where partitioning tools start
// the first partition.
constexpr uint64_t kBootArea = 1u << 20;

UsageMap whole_disk(uint64_t disk_size, std::string note) {
  UsageMap m;
  if (disk_size) m.used.push_back({0, disk_size});
  m.notes.push_back(std::move(note) + ": the whole disk is kept");
  return m;
}

// Reads one window (a partition, or the bare disk) with the reader its content calls for.
Result<VolumeScan> scan_window(disk::VirtualDisk& d, uint64_t offset, uint64_t size, Content content = Content::Linux) {
  std::vector<std::byte> head(std::min(size, kProbeBytes));
  VHDKIT_TRY(read_exact(d, offset, head));
  // Encrypted, multi-device and unread volumes first: their signatures are never left behind by a reader's
  // mkfs, and naming one only ever keeps more.
  VHDKIT_ASSIGN(auto named, find_known_signature(d, offset, size));
  if (named) return std::move(*named);
  if (const Reader* r = recognise(head)) return r->read(d, head, offset, size);
  if (content == Content::Lvm) return kept_whole(offset, size, "", "LVM: no PV label recognised, kept whole");
  return kept_whole(offset, size, "", "no file system recognised");
}

// Does a file system (or a PV label) the reader table recognises start at `offset`?
Result<bool> recognised_at(disk::VirtualDisk& d, uint64_t offset) {
  if (offset >= d.virtual_size()) return false;
  std::vector<std::byte> head(std::min(d.virtual_size() - offset, kProbeBytes));
  VHDKIT_TRY(read_exact(d, offset, head));
  return recognise(head) != nullptr;
}

Volume make_volume(const std::string& table, const std::string& type, uint64_t offset, uint64_t size) {
  Volume v;
  v.table = table;
  v.type = type;
  v.offset = offset;
  v.size = size;
  return v;
}

void add_scan(UsageMap& m, std::vector<ByteRange>& used, Volume v, VolumeScan s) {
  v.filesystem = std::move(s.filesystem);
  v.state = s.state;
  v.reason = std::move(s.reason);
  if (v.state == Volume::State::Read) m.any_filesystem_read = true;
  for (ByteRange r : s.used) used.push_back(clamp_range(r, v.offset, v.offset + v.size));
  for (std::string& n : s.notes) m.notes.push_back(std::move(n));
  m.volumes.push_back(std::move(v));
}

Result<UsageMap> map_partitioned(disk::VirtualDisk& d, PartitionTable t) {
  const uint64_t disk_size = d.virtual_size();
  if (t.keep_disk_whole) {
    UsageMap m = whole_disk(disk_size, t.table + ": " + *t.keep_disk_whole);
    for (std::string& n : t.notes) m.notes.insert(m.notes.end() - 1, std::move(n));
    return m;
  }
  UsageMap m;
  m.notes = std::move(t.notes);
  std::vector<ByteRange> used;
  used.push_back({0, std::min(kBootArea, disk_size)});
  for (ByteRange r : t.metadata) used.push_back(clamp_range(r, 0, disk_size));

  std::sort(t.partitions.begin(), t.partitions.end(),
            [](const Partition& a, const Partition& b) { return a.offset < b.offset; });
  // Overlapping partitions: which one owns the shared bytes is unknowable, so neither is read.
  std::vector<bool> overlaps(t.partitions.size(), false);
  for (size_t i = 0; i < t.partitions.size(); ++i) {
    for (size_t j = i + 1;
         j < t.partitions.size() && t.partitions[j].offset < t.partitions[i].offset + t.partitions[i].size; ++j) {
      overlaps[i] = overlaps[j] = true;
    }
  }
  for (size_t i = 0; i < t.partitions.size(); ++i) {
    const Partition& p = t.partitions[i];
    Volume v = make_volume(t.table, p.type, p.offset, p.size);
    if (overlaps[i]) {
      add_scan(m, used, v, kept_whole(p.offset, p.size, "", "overlaps another partition"));
    } else if (p.content == Content::Opaque) {
      add_scan(m, used, v, kept_whole(p.offset, p.size, "", p.opaque_reason));
    } else {
      VHDKIT_ASSIGN(VolumeScan s, scan_window(d, p.offset, p.size, p.content));
      add_scan(m, used, v, std::move(s));
    }
  }
  m.used = merge_ranges(std::move(used));
  return m;
}

Result<UsageMap> map_usage_impl(disk::VirtualDisk& d) {
  const uint64_t disk_size = d.virtual_size();
  if (disk_size < 4096) return whole_disk(disk_size, "the disk is too small to hold a file system");
  std::array<std::byte, 512> s0{};
  VHDKIT_TRY(read_exact(d, 0, s0));
  MbrSector mbr = parse_mbr_sector(s0);

  if (mbr.signature && has_protective_entry(mbr)) {
    // GPT's logical block is the disk's logical sector; try the other common size too.
    uint64_t lss = d.info().logical_sector_size;
    std::array<uint64_t, 2> sizes = {lss == 4096 ? 4096u : 512u, lss == 4096 ? 512u : 4096u};
    for (uint64_t lba : sizes) {
      VHDKIT_ASSIGN(auto gpt, read_gpt(d, lba, mbr));
      if (gpt) return map_partitioned(d, std::move(*gpt));
    }
    return whole_disk(disk_size, "gpt: the MBR announces a GPT but neither GPT header is valid");
  }

  std::vector<std::byte> head(std::min(disk_size, kProbeBytes));
  VHDKIT_TRY(read_exact(d, 0, head));
  const bool bare_fs = recognise(head) != nullptr;

  if (plausible_mbr(mbr)) {
    // A file system's superblock at the disk's start next to a partition table: one of them is stale, and
    // we cannot tell which.
    if (bare_fs) return whole_disk(disk_size, "mbr: a partition table and a file system both start the disk");
    VHDKIT_ASSIGN(auto gpt_probe, read_gpt(d, 512, mbr));
    if (gpt_probe) return whole_disk(disk_size, "mbr: a valid GPT sits behind an MBR without a protective entry");
    // MBR entries count logical sectors: 4096 bytes on a 4Kn disk. A raw image cannot tell us, so a
    // Linux partition with no file system where 512-byte sectors put it, but one where 4096-byte sectors
    // would, means we cannot know the sector size: keep the disk.
    const uint64_t sector = d.info().logical_sector_size == 4096 ? 4096 : 512;
    VHDKIT_ASSIGN(PartitionTable t, read_mbr(d, mbr, sector));
    if (sector == 512 && !t.keep_disk_whole) {
      for (const Partition& p : t.partitions) {
        if (p.content == Content::Opaque) continue;
        VHDKIT_ASSIGN(bool here, recognised_at(d, p.offset));
        if (here) continue;
        auto scaled = checked_mul(p.offset, 8);
        if (!scaled) continue;
        VHDKIT_ASSIGN(bool there, recognised_at(d, *scaled));
        if (there)
          return whole_disk(
              disk_size,
              "mbr: the disk's sector size is ambiguous (a file system sits where 4096-byte sectors put a partition)");
      }
    }
    return map_partitioned(d, std::move(t));
  }

  if (!bare_fs) return whole_disk(disk_size, "no partition table or file system recognised");
  UsageMap m;
  std::vector<ByteRange> used;
  VHDKIT_ASSIGN(VolumeScan s, scan_window(d, 0, disk_size));
  add_scan(m, used, make_volume("none", "whole disk", 0, disk_size), std::move(s));
  m.used = merge_ranges(std::move(used));
  return m;
}

}  // namespace

Result<UsageMap> map_usage(disk::VirtualDisk& disk) {
  try {
    VHDKIT_ASSIGN(UsageMap m, map_usage_impl(disk));
    for (Volume& v : m.volumes) {
      v.used_bytes = covered_bytes(m.used, v.offset, v.offset + v.size);
      v.free_bytes = v.size - v.used_bytes;
    }
    return m;
  } catch (const std::bad_alloc&) {
    return fail(ReturnCode::OutOfMemory, disk.path(), "out of memory while mapping the file systems");
  } catch (const std::exception& e) {
    return fail(ReturnCode::Failed, disk.path(), std::string("while mapping the file systems: ") + e.what());
  }
}

std::string_view to_string(Volume::State s) { return s == Volume::State::Read ? "read" : "kept whole"; }

std::vector<ByteRange> unused_ranges(const UsageMap& map, uint64_t disk_size) {
  std::vector<ByteRange> out;
  uint64_t pos = 0;
  for (const ByteRange& r : map.used) {
    if (r.offset > pos) out.push_back({pos, r.offset - pos});
    pos = std::max(pos, r.end());
  }
  if (pos < disk_size) out.push_back({pos, disk_size - pos});
  return out;
}

}  // namespace vhdkit::fs
