// SPDX-License-Identifier: Apache-2.0
// XFS, read from its on-disk format (xfs_format.h): the superblock, then per allocation group the AGF and
// its free-space B+tree by block number (bnobt). Used = everything no bnobt record calls free: the AG
// headers, the free list, the inode chunks, the btrees and the internal log are used by construction.
// Trusted only when every structure checks: v5 CRC32C on the superblock, each AGF and each btree block
// (with their UUID, owner and address), levels strictly descending, records sorted inside their AG and
// summing to the AGF's free-block count, and a clean log (its last record an unmount record). Anything
// else - a dirty log, an external log, a realtime device, unknown features - keeps the volume whole.
#include <array>
#include <bit>
#include <cstring>
#include <optional>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <boost/crc.hpp>

#include "core/bytes.h"
#include "fs/partition_table.h"
#include "fs/ranges.h"
#include "fs/used_runs.h"
#include "fs/volume_scan.h"
#include "fs/xfs_format.h"

namespace vhdkit::fs::detail {
namespace {

using namespace xfs;

// The CRC32C of a block with its checksum field taken as zero, as xfs_cksum.h computes it.
uint32_t crc32c_zeroed(std::span<const std::byte> b, size_t field) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(b.data(), field);
  const std::array<std::byte, 4> zero{};
  crc.process_bytes(zero.data(), zero.size());
  crc.process_bytes(b.data() + field + 4, b.size() - field - 4);
  return crc.checksum();
}
bool crc_ok(std::span<const std::byte> b, size_t field) {
  return load_le<uint32_t>(b.data() + field) == crc32c_zeroed(b, field);
}

struct Super {
  bool v5 = false;
  uint64_t block = 0, sector = 0, dblocks = 0, logstart = 0;
  uint32_t agblocks = 0, agcount = 0, logblocks = 0;
  uint8_t agblklog = 0;
  std::array<std::byte, 16> meta_uuid{};
};

bool pow2_in(uint64_t v, uint64_t lo, uint64_t hi) { return v >= lo && v <= hi && std::has_single_bit(v); }

// Validates the primary superblock; the reason when it cannot be trusted.
std::optional<std::string> parse_super(std::span<const std::byte> head, uint64_t size, Super& s) {
  const std::byte* b = head.data();
  if (head.size() < 512 || load_be<uint32_t>(b) != kSuperMagic) return "the superblock is malformed";
  const uint16_t version = load_be<uint16_t>(b + sb::versionnum) & 0xF;
  if (version != 4 && version != 5) return fmt::format("superblock version {} is not 4 or 5", version);
  s.v5 = version == 5;
  s.block = load_be<uint32_t>(b + sb::blocksize);
  s.sector = load_be<uint16_t>(b + sb::sectsize);
  if (!pow2_in(s.block, 512, 65536) || uint8_t(b[sb::blocklog]) != std::countr_zero(s.block))
    return fmt::format("block size {} is out of range", s.block);
  if (!pow2_in(s.sector, 512, 32768) || s.sector > s.block || uint8_t(b[sb::sectlog]) != std::countr_zero(s.sector))
    return fmt::format("sector size {} is out of range", s.sector);
  if (s.sector > head.size()) return "the superblock's sector does not fit the volume";
  if (s.v5 && !crc_ok(head.first(s.sector), sb::crc)) return "the superblock's checksum does not match";
  if (uint8_t(b[sb::inprogress])) return "mkfs.xfs did not finish (sb_inprogress is set)";
  s.dblocks = load_be<uint64_t>(b + sb::dblocks);
  s.agblocks = load_be<uint32_t>(b + sb::agblocks);
  s.agcount = load_be<uint32_t>(b + sb::agcount);
  s.agblklog = uint8_t(b[sb::agblklog]);
  // mkfs makes AGs of at least 64 blocks; agblklog is log2 of agblocks, rounded up.
  if (s.agblocks < 64 || s.agcount == 0 || s.agblklog > 31 || (uint64_t{1} << s.agblklog) < s.agblocks ||
      (s.agblklog > 0 && (uint64_t{1} << (s.agblklog - 1)) >= s.agblocks))
    return "the allocation group geometry is inconsistent";
  const uint64_t full = uint64_t{s.agcount} * s.agblocks;
  if (s.dblocks > full || s.dblocks <= full - s.agblocks) return "the block count disagrees with the allocation groups";
  auto bytes = checked_mul(s.dblocks, s.block);
  if (!bytes || *bytes > size)
    return fmt::format("the file system ({} blocks of {} bytes) is larger than its partition ({} bytes)", s.dblocks,
                       s.block, size);
  if (load_be<uint64_t>(b + sb::rblocks) || load_be<uint64_t>(b + sb::rextents))
    return "a realtime device holds part of it";
  if (s.v5) {
    if (uint32_t u = load_be<uint32_t>(b + sb::features_ro_compat) & ~kKnownRoCompat)
      return fmt::format("unknown read-only-compatible features 0x{:x}", u);
    const uint32_t incompat = load_be<uint32_t>(b + sb::features_incompat);
    if (incompat & 0x10) return "the file system is marked as needing xfs_repair";
    if (uint32_t u = incompat & ~kKnownIncompat) return fmt::format("unknown incompatible features 0x{:x}", u);
    if (load_be<uint32_t>(b + sb::features_log_incompat))
      return "the log has incompatible features set (not cleanly unmounted?)";
    std::memcpy(s.meta_uuid.data(), b + ((incompat & kIncompatMetaUuid) ? sb::meta_uuid : sb::uuid), 16);
  }
  s.logstart = load_be<uint64_t>(b + sb::logstart);
  s.logblocks = load_be<uint32_t>(b + sb::logblocks);
  if (s.logstart == 0) return "the log is on an external device";
  return std::nullopt;
}

struct AgWalk {
  const Super& s;
  disk::VirtualDisk& d;
  uint64_t offset;  // the volume's first byte on the disk
  uint32_t agno = 0;
  uint32_t length = 0;    // blocks of this AG
  uint64_t ag_start = 0;  // its first byte on the disk
  UsedRuns& out;
  uint64_t next_used = 0;  // AG block: the first one not yet emitted as used
  uint64_t free_blocks = 0;
  std::set<uint32_t> visited;

  // The blocks on the AG's free list (sorted): reserved for the btrees to grow into, holding nothing until
  // a btree takes one and writes it whole. xfs_db's freesp counts them free, and so do we.
  std::vector<uint32_t> agfl;
  size_t agfl_next = 0;

  uint64_t byte_of(uint64_t agbno) const { return ag_start + agbno * s.block; }
  // Emits the used run up to `start` (with the free-list blocks before it); false when a free-list block
  // lies inside a free extent.
  bool used_until(uint64_t start) {
    for (; agfl_next < agfl.size() && agfl[agfl_next] < start; ++agfl_next) {
      const uint64_t b = agfl[agfl_next];
      if (b < next_used) return false;
      out.add({byte_of(next_used), (b - next_used) * s.block});
      next_used = b + 1;
    }
    out.add({byte_of(next_used), (start - next_used) * s.block});
    return true;
  }
  bool free_extent(uint64_t start, uint64_t count) {
    if (!used_until(start)) return false;
    next_used = start + count;
    free_blocks += count;
    return true;
  }
  bool finish() { return used_until(length); }
};

// Reads the AG free list (AGFL, the AG's fourth sector) named by the AGF; the reason when it is damaged.
// A list that wraps round the end of its array is left used: kernels before 4.16 disagreed on the array's
// length, so its last slot's meaning is not certain.
Result<std::optional<std::string>> read_agfl(AgWalk& w, std::span<const std::byte> agf_sector) {
  using R = std::optional<std::string>;
  const uint32_t first = load_be<uint32_t>(&agf_sector[agf::flfirst]),
                 last = load_be<uint32_t>(&agf_sector[agf::fllast]),
                 count = load_be<uint32_t>(&agf_sector[agf::flcount]);
  const size_t hdr = w.s.v5 ? agfl::header_v5 : 0;
  const uint64_t slots = (w.s.sector - hdr) / 4;
  if (count == 0) return R();
  if (first >= slots || last >= slots || count > slots)
    return R(fmt::format("AG {}: the AGF's free list is out of range", w.agno));
  if (last < first) return R();  // wrapped: its blocks stay used
  if (count != last - first + 1) return R(fmt::format("AG {}: the AGF's free list count disagrees", w.agno));
  std::vector<std::byte> b(w.s.sector);
  VHDKIT_TRY(read_exact(w.d, w.ag_start + 3 * w.s.sector, b));
  if (w.s.v5 && (load_be<uint32_t>(&b[agfl::magic]) != kAgflMagic || load_be<uint32_t>(&b[agfl::seqno]) != w.agno ||
                 std::memcmp(&b[agfl::uuid], w.s.meta_uuid.data(), 16) != 0 || !crc_ok(b, agfl::crc)))
    return R(fmt::format("AG {}: the free list's header or checksum does not match", w.agno));
  const uint64_t headers = (4 * w.s.sector + w.s.block - 1) / w.s.block;
  for (uint32_t i = first; i <= last; ++i) {
    const uint32_t blk = load_be<uint32_t>(&b[hdr + uint64_t{i} * 4]);
    if (blk < headers || blk >= w.length) return R(fmt::format("AG {}: a free-list block is out of range", w.agno));
    w.agfl.push_back(blk);
  }
  std::sort(w.agfl.begin(), w.agfl.end());
  if (std::adjacent_find(w.agfl.begin(), w.agfl.end()) != w.agfl.end())
    return R(fmt::format("AG {}: the free list names a block twice", w.agno));
  return R();
}

// Walks the bnobt from `root` depth first, in key order, emitting used runs between free extents.
Result<std::optional<std::string>> walk_bnobt(AgWalk& w, uint32_t root, uint32_t levels) {
  using R = std::optional<std::string>;
  const size_t hdr = w.s.v5 ? bt::header_v5 : bt::header_v4;
  const uint64_t node_max = (w.s.block - hdr) / 12, leaf_max = (w.s.block - hdr) / 8;
  struct Item {
    uint32_t agbno;
    uint32_t level;
  };
  std::vector<Item> stack = {{root, levels - 1}};
  std::vector<std::byte> b(w.s.block);
  while (!stack.empty()) {
    Item it = stack.back();
    stack.pop_back();
    if (it.agbno == 0 || it.agbno >= w.length)
      return R(fmt::format("AG {}: a free-space btree pointer is out of range", w.agno));
    if (!w.visited.insert(it.agbno).second)
      return R(fmt::format("AG {}: the free-space btree visits a block twice", w.agno));
    VHDKIT_TRY(read_exact(w.d, w.byte_of(it.agbno), b));
    const uint32_t magic = load_be<uint32_t>(&b[bt::magic]);
    if (magic != (w.s.v5 ? kBnoMagicV5 : kBnoMagicV4))
      return R(fmt::format("AG {}: a free-space btree block has a bad magic", w.agno));
    if (w.s.v5) {
      if (!crc_ok(b, bt::crc))
        return R(fmt::format("AG {}: a free-space btree block's checksum does not match", w.agno));
      const uint64_t daddr = (w.byte_of(it.agbno) - w.offset) / 512;
      if (load_be<uint64_t>(&b[bt::blkno]) != daddr || load_be<uint32_t>(&b[bt::owner]) != w.agno ||
          std::memcmp(&b[bt::uuid], w.s.meta_uuid.data(), 16) != 0)
        return R(fmt::format("AG {}: a free-space btree block does not describe itself", w.agno));
    }
    const uint32_t level = load_be<uint16_t>(&b[bt::level]), n = load_be<uint16_t>(&b[bt::numrecs]);
    if (level != it.level) return R(fmt::format("AG {}: a free-space btree block sits at the wrong level", w.agno));
    const bool is_root = it.agbno == root;
    if (level > 0) {
      if (n == 0 || n > node_max)
        return R(fmt::format("AG {}: a free-space btree node's record count is out of range", w.agno));
      const size_t ptrs = hdr + node_max * 8;
      for (uint32_t i = n; i-- > 0;) stack.push_back({load_be<uint32_t>(&b[ptrs + i * 4]), level - 1});
      continue;
    }
    if (n > leaf_max || (n == 0 && !is_root))
      return R(fmt::format("AG {}: a free-space btree leaf's record count is out of range", w.agno));
    for (uint32_t i = 0; i < n; ++i) {
      const uint64_t start = load_be<uint32_t>(&b[hdr + i * 8]), count = load_be<uint32_t>(&b[hdr + i * 8 + 4]);
      if (count == 0 || start < w.next_used || start + count > w.length)
        return R(fmt::format("AG {}: free extent {}+{} overlaps another or leaves the AG", w.agno, start, count));
      if (!w.free_extent(start, count)) return R(fmt::format("AG {}: a free-list block lies in a free extent", w.agno));
    }
  }
  return R();
}

}  // namespace

bool looks_like_xfs(std::span<const std::byte> head) {
  return head.size() >= 512 && load_be<uint32_t>(head.data()) == kSuperMagic;
}

Result<VolumeScan> read_xfs(disk::VirtualDisk& d, std::span<const std::byte> head, uint64_t offset, uint64_t size) {
  Super s;
  const std::string name = "xfs";
  if (auto why = parse_super(head, size, s)) return kept_whole(offset, size, name, *why);
  const std::string fsname = s.v5 ? "xfs" : "xfs (v4)";
  auto whole = [&](const std::string& why) { return kept_whole(offset, size, fsname, "xfs: " + why); };

  // The internal log: fsblock numbers are (AG << agblklog) | AG block.
  const uint64_t log_ag = s.logstart >> s.agblklog, log_agbno = s.logstart & ((uint64_t{1} << s.agblklog) - 1);
  if (log_ag >= s.agcount || s.logblocks == 0 || log_agbno + s.logblocks > s.agblocks ||
      log_ag * s.agblocks + log_agbno + s.logblocks > s.dblocks)
    return whole("the internal log lies outside its allocation group");
  const uint64_t log_offset = offset + (log_ag * s.agblocks + log_agbno) * s.block;
  VHDKIT_ASSIGN(auto log_why, log_problem(d, log_offset, uint64_t{s.logblocks} * s.block));
  if (log_why) return whole("the log is dirty (" + *log_why + "); run xfs_repair or mount it once");

  UsedRuns out(s.block);
  std::vector<std::byte> agf(s.sector);
  for (uint32_t agno = 0; agno < s.agcount; ++agno) {
    const uint64_t ag_start = offset + uint64_t{agno} * s.agblocks * s.block;
    const auto length = static_cast<uint32_t>(std::min<uint64_t>(s.agblocks, s.dblocks - uint64_t{agno} * s.agblocks));
    AgWalk walk{s, d, offset, agno, length, ag_start, out, 0, 0, {}, {}, 0};
    VHDKIT_TRY(read_exact(d, walk.ag_start + s.sector, agf));
    if (load_be<uint32_t>(&agf[agf::magic]) != kAgfMagic || load_be<uint32_t>(&agf[agf::versionnum]) != 1)
      return whole(fmt::format("AG {}: the AGF is malformed", agno));
    if (s.v5 && (!crc_ok(agf, agf::crc) || std::memcmp(&agf[agf::uuid], s.meta_uuid.data(), 16) != 0))
      return whole(fmt::format("AG {}: the AGF's checksum or UUID does not match", agno));
    if (load_be<uint32_t>(&agf[agf::seqno]) != agno || load_be<uint32_t>(&agf[agf::length]) != walk.length)
      return whole(fmt::format("AG {}: the AGF's number or length disagrees with the superblock", agno));
    const uint32_t root = load_be<uint32_t>(&agf[agf::bno_root]), levels = load_be<uint32_t>(&agf[agf::bno_level]);
    if (levels == 0 || levels > 9) return whole(fmt::format("AG {}: the free-space btree has {} levels", agno, levels));
    // The AG's four header sectors (superblock, AGF, AGI, AGFL) are never free.
    walk.next_used = (4 * s.sector + s.block - 1) / s.block;
    out.add({ag_start, walk.next_used * s.block});
    VHDKIT_ASSIGN(auto agfl_why, read_agfl(walk, agf));
    if (agfl_why) return whole(*agfl_why);
    VHDKIT_ASSIGN(auto why, walk_bnobt(walk, root, levels));
    if (why) return whole(*why);
    if (walk.free_blocks != load_be<uint32_t>(&agf[agf::freeblks]))
      return whole(fmt::format("AG {}: the free extents ({} blocks) disagree with the AGF ({} blocks)", agno,
                               walk.free_blocks, load_be<uint32_t>(&agf[agf::freeblks])));
    if (!walk.finish()) return whole(fmt::format("AG {}: a free-list block lies in a free extent", agno));
    for (uint32_t blk : walk.visited) {
      if (!out.covers(walk.byte_of(blk), s.block))
        return whole(fmt::format("AG {}: a free-space btree block lies in free space", agno));
    }
    if (agno == log_ag && !out.covers(log_offset, uint64_t{s.logblocks} * s.block))
      return whole("the log lies in free space");
  }
  VolumeScan scan;
  scan.filesystem = fsname;
  scan.state = Volume::State::Read;
  const uint64_t fs_bytes = s.dblocks * s.block;
  if (out.min_gap()) {
    scan.notes.push_back(fmt::format("the XFS at {} is fragmented: free gaps shorter than {} bytes are counted as used",
                                     offset, out.min_gap()));
  }
  scan.used = out.take();
  // Past the file system: not XFS's, kept (as for ext).
  if (fs_bytes < size) scan.used.push_back({offset + fs_bytes, size - fs_bytes});
  return scan;
}

}  // namespace vhdkit::fs::detail
