// SPDX-License-Identifier: Apache-2.0
// ext2/3/4 through libext2fs (the library e2fsck and dumpe2fs use): it parses and validates the superblock,
// group descriptors and bitmaps; we only decide whether to trust the result and turn the block bitmap
// into byte ranges, run by run. Used = every block (cluster, with bigalloc) the bitmap marks used, plus what
// lies outside the bitmap (the boot block of 1 KiB-block file systems, the partition's tail past the file
// system). Any doubt keeps the whole partition.
#include <array>
#include <cerrno>
#include <mutex>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "core/bytes.h"
#include "fs/ext_io.h"
#include "fs/partition_table.h"
#include "fs/ranges.h"
#include "fs/volume_scan.h"

namespace vhdkit::fs::detail {
namespace {

// com_err's table registration and its buffer for unknown codes are process-wide: serialise them.
std::string describe_error(errcode_t code) {
  static std::once_flag once;
  static std::mutex mu;
  std::call_once(once, [] { initialize_ext2_error_table(); });
  std::lock_guard lock(mu);
  const char* m = error_message(code);
  return m ? std::string(m) : fmt::format("error {}", code);
}

std::string ext_flavour(const ext2_super_block* sb) {
  const uint32_t ext4_incompat = EXT3_FEATURE_INCOMPAT_EXTENTS | EXT4_FEATURE_INCOMPAT_64BIT |
                                 EXT4_FEATURE_INCOMPAT_FLEX_BG | EXT4_FEATURE_INCOMPAT_MMP |
                                 EXT4_FEATURE_INCOMPAT_EA_INODE | EXT4_FEATURE_INCOMPAT_LARGEDIR |
                                 EXT4_FEATURE_INCOMPAT_INLINE_DATA | EXT4_FEATURE_INCOMPAT_CSUM_SEED |
                                 EXT4_FEATURE_INCOMPAT_ENCRYPT | EXT4_FEATURE_INCOMPAT_CASEFOLD;
  const uint32_t ext4_ro = EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_GDT_CSUM |
                           EXT4_FEATURE_RO_COMPAT_DIR_NLINK | EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE |
                           EXT4_FEATURE_RO_COMPAT_BIGALLOC | EXT4_FEATURE_RO_COMPAT_METADATA_CSUM |
                           EXT4_FEATURE_RO_COMPAT_QUOTA | EXT4_FEATURE_RO_COMPAT_PROJECT;
  if ((sb->s_feature_incompat & ext4_incompat) || (sb->s_feature_ro_compat & ext4_ro)) return "ext4";
  if (sb->s_feature_compat & EXT3_FEATURE_COMPAT_HAS_JOURNAL) return "ext3";
  return "ext2";
}

// Closes the file system on every path out (before the ExtWindow it reads through goes away).
struct FsCloser {
  ext2_filsys fs = nullptr;
  ~FsCloser() {
    if (fs) ext2fs_close_free(&fs);
  }
};

// The journal's own superblock (JBD2, big-endian): magic 0xC03B3998 @0, block type @4 (3: v1, 4: v2),
// s_start @28, the first block of the log still to replay (0: nothing to replay). The superblock flag
// needs_recovery normally says the same; a journal with data but no flag is an inconsistency we do not
// resolve (e2fsck asks the user), so it keeps the partition whole too.
std::optional<std::string> journal_problem(ext2_filsys fs) {
  ext2_super_block* sb = fs->super;
  if (!ext2fs_has_feature_journal(sb)) return std::nullopt;
  if (sb->s_journal_inum == 0) return std::nullopt;  // external journal: the flag is all we can see
  blk64_t phys = 0;
  errcode_t e = ext2fs_bmap2(fs, sb->s_journal_inum, nullptr, nullptr, 0, 0, nullptr, &phys);
  if (e || phys == 0) return "the journal cannot be located" + (e ? ": " + describe_error(e) : std::string());
  std::vector<std::byte> b(fs->blocksize);
  e = io_channel_read_blk64(fs->io, phys, 1, b.data());
  if (e) return "the journal cannot be read: " + describe_error(e);
  uint32_t magic = load_be<uint32_t>(&b[0]), type = load_be<uint32_t>(&b[4]), start = load_be<uint32_t>(&b[28]);
  if (magic != 0xC03B3998u || (type != 3 && type != 4)) return "the journal's superblock is damaged";
  if (start != 0) return "the journal holds transactions not yet applied";
  return std::nullopt;
}

}  // namespace

namespace {

// The few superblock fields (at byte 1024 of the window) we look at before libext2fs does: s_inodes_count
// @0, s_blocks_count_lo @4, s_log_block_size @24, s_blocks_per_group @32, s_magic @56,
// s_feature_incompat @96, s_blocks_count_hi @336 (only with the 64bit feature).
struct SuperPeek {
  uint64_t blocks = 0, block_size = 0, blocks_per_group = 0;
};
std::optional<SuperPeek> peek_super(std::span<const std::byte> head) {
  if (head.size() < 2048) return std::nullopt;
  const std::byte* sb = head.data() + 1024;
  if (load_le<uint16_t>(sb + 56) != EXT2_SUPER_MAGIC) return std::nullopt;
  uint32_t log_bs = load_le<uint32_t>(sb + 24);
  if (log_bs > 6 || load_le<uint32_t>(sb + 0) == 0 || load_le<uint32_t>(sb + 32) == 0) return std::nullopt;
  SuperPeek p;
  p.block_size = uint64_t{1024} << log_bs;
  p.blocks = load_le<uint32_t>(sb + 4);
  p.blocks_per_group = load_le<uint32_t>(sb + 32);
  if (load_le<uint32_t>(sb + 96) & EXT4_FEATURE_INCOMPAT_64BIT) p.blocks |= uint64_t{load_le<uint32_t>(sb + 336)} << 32;
  return p;
}

}  // namespace

bool looks_like_ext(std::span<const std::byte> head) { return peek_super(head).has_value(); }

Result<VolumeScan> read_ext(disk::VirtualDisk& disk, uint64_t offset, uint64_t size) {
  // Refuse a file system larger than its partition before libext2fs sizes its tables from the superblock
  // (a damaged block count would make it allocate descriptors for a disk that does not exist).
  {
    std::vector<std::byte> head(std::min<uint64_t>(size, 2048));
    VHDKIT_TRY(read_exact(disk, offset, head));
    auto peek = peek_super(head);
    if (!peek) return kept_whole(offset, size, "ext", "the ext superblock is malformed");
    auto bytes = checked_mul(peek->blocks, peek->block_size);
    if (!bytes || *bytes > size) {
      return kept_whole(offset, size, "ext",
                        fmt::format("the file system ({} blocks of {} bytes) is larger than its partition ({} bytes)",
                                    peek->blocks, peek->block_size, size));
    }
    // mke2fs makes groups of 256 blocks or more; fewer would only serve to make libext2fs allocate
    // descriptors for millions of groups.
    if (peek->blocks_per_group < 256) {
      return kept_whole(offset, size, "ext",
                        fmt::format("{} blocks per group is out of range", peek->blocks_per_group));
    }
  }
  ExtWindow window(disk, offset, size);
  FsCloser closer;
  std::string name = "ext";  // refined once the superblock is read
  auto whole = [&](std::string why) -> Result<VolumeScan> {
    if (window.disk_error()) return fail(*window.disk_error());
    return kept_whole(offset, size, name, std::move(why));
  };

  // Read-only (no EXT2_FLAG_RW); 64-bit bitmaps so that large file systems work; checksums verified.
  errcode_t e = ext2fs_open2(window.name(), nullptr, EXT2_FLAG_64BITS, 0, 0, ExtWindow::manager(), &closer.fs);
  if (e) return whole("libext2fs cannot open it: " + describe_error(e));
  ext2_filsys fs = closer.fs;
  ext2_super_block* sb = fs->super;
  name = ext_flavour(sb);

  if (ext2fs_has_feature_journal_needs_recovery(sb)) return whole("the journal needs recovery");
  if (ext2fs_has_feature_journal_dev(sb)) return whole("an external journal device, not a file system");
  if (sb->s_state & EXT2_ERROR_FS) return whole("the file system has recorded errors (run e2fsck)");
  if (!(sb->s_state & EXT2_VALID_FS)) return whole("the file system was not cleanly unmounted (run e2fsck)");
  // Read-only opens accept unknown read-only-compatible features; a feature we do not know might change
  // what the bitmap means, so we do not accept them.
  if (uint32_t unknown = sb->s_feature_ro_compat & ~EXT2_LIB_FEATURE_RO_COMPAT_SUPP) {
    return whole(fmt::format("unknown read-only-compatible features 0x{:x}", unknown));
  }
  if (uint32_t unknown = sb->s_feature_incompat & ~EXT2_LIB_FEATURE_INCOMPAT_SUPP) {
    return whole(fmt::format("unknown incompatible features 0x{:x}", unknown));
  }
  const uint64_t blocks = ext2fs_blocks_count(sb), bs = fs->blocksize;
  auto fs_bytes = checked_mul(blocks, bs);
  if (!fs_bytes || *fs_bytes > size) {
    return whole(fmt::format("the file system ({} blocks of {} bytes) is larger than its partition ({} bytes)", blocks,
                             bs, size));
  }
  if (blocks <= sb->s_first_data_block) return whole("the file system has no blocks");
  if ((e = ext2fs_check_desc(fs))) return whole("group descriptors are inconsistent: " + describe_error(e));
  if (ext2fs_has_group_desc_csum(fs)) {
    for (dgrp_t g = 0; g < fs->group_desc_count; ++g) {
      if (!ext2fs_group_desc_csum_verify(fs, g)) return whole(fmt::format("group descriptor {} checksum mismatch", g));
    }
  }
  if (auto why = journal_problem(fs)) return whole(*why);
  // Very large file systems: a tree of extents instead of one bit per block, so memory stays bounded.
  if (blocks > (uint64_t{1} << 31)) fs->default_bitmap_type = EXT2FS_BMAP64_RBTREE;
  if ((e = ext2fs_read_block_bitmap(fs))) return whole("the block bitmap cannot be read: " + describe_error(e));
  if (window.disk_error()) return fail(*window.disk_error());

  VolumeScan s;
  s.filesystem = name;
  s.state = Volume::State::Read;
  // Blocks before s_first_data_block (the boot block of 1 KiB-block file systems) are not in the bitmap.
  s.used.push_back({offset, sb->s_first_data_block * bs});
  // A hostile or badly fragmented bitmap could alternate used and free blocks: past kMaxRuns runs, short
  // free gaps are counted as used (doubling the shortest kept gap each time), so memory stays bounded.
  constexpr size_t kMaxRuns = size_t{1} << 21;
  uint64_t min_gap = 0;
  auto add_run = [&](ByteRange r) {
    if (!s.used.empty() && r.offset - s.used.back().end() < min_gap) {
      s.used.back().length = r.end() - s.used.back().offset;
    } else {
      s.used.push_back(r);
    }
    if (s.used.size() > kMaxRuns) {
      min_gap = min_gap ? min_gap * 2 : 2 * bs;
      coalesce_gaps(s.used, min_gap);
    }
  };
  const blk64_t last = blocks - 1;
  blk64_t pos = sb->s_first_data_block;
  while (pos <= last) {
    blk64_t set = 0, zero = 0;
    e = ext2fs_find_first_set_block_bitmap2(fs->block_map, pos, last, &set);
    if (e == ENOENT) break;
    if (e) return whole("the block bitmap cannot be searched: " + describe_error(e));
    e = ext2fs_find_first_zero_block_bitmap2(fs->block_map, set, last, &zero);
    if (e == ENOENT) {
      zero = last + 1;
    } else if (e) {
      return whole("the block bitmap cannot be searched: " + describe_error(e));
    }
    if (zero <= set) return whole("the block bitmap search went backwards");  // never loop
    add_run({offset + set * bs, (zero - set) * bs});
    pos = zero;
  }
  if (min_gap) {
    s.notes.push_back(fmt::format(
        "the block bitmap of the partition at {} is fragmented: free gaps shorter than {} bytes are counted as used",
        offset, min_gap));
  }
  // The partition's tail past the file system is not the file system's: something else (RAID metadata,
  // a shrunk file system's leftovers) may live there, so it stays.
  if (*fs_bytes < size) {
    s.used.push_back({offset + *fs_bytes, size - *fs_bytes});
    if (size - *fs_bytes >= (1u << 20)) {
      s.notes.push_back(fmt::format("{} bytes at the end of the partition at {} lie past its file system: kept",
                                    size - *fs_bytes, offset));
    }
  }
  return s;
}

}  // namespace vhdkit::fs::detail
