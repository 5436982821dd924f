// SPDX-License-Identifier: Apache-2.0
// The few XFS on-disk structures the reader needs, as byte offsets (all fields big-endian, checksums
// little-endian CRC32C), from the XFS Algorithms & Data Structures document, read beside xfsprogs'
// xfs_format.h and xfs_log_format.h (Debian xfslibs-dev).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "disk/virtual_disk.h"

namespace vhdkit::fs::detail::xfs {

constexpr uint32_t kSuperMagic = 0x58465342;  // "XFSB"
constexpr uint32_t kAgfMagic = 0x58414746;    // "XAGF"
constexpr uint32_t kAgflMagic = 0x5841464C;   // "XAFL"
constexpr uint32_t kBnoMagicV4 = 0x41425442;  // "ABTB"
constexpr uint32_t kBnoMagicV5 = 0x41423342;  // "AB3B"
constexpr uint32_t kLogMagic = 0xFEEDBABE;    // a log record header
constexpr uint32_t kNullAgBlock = 0xFFFFFFFF;

// Superblock (xfs_dsb)
namespace sb {
constexpr size_t magic = 0, blocksize = 4, dblocks = 8, rblocks = 16, rextents = 24, uuid = 32, logstart = 48,
                 agblocks = 84, agcount = 88, logblocks = 96, versionnum = 100, sectsize = 102, blocklog = 120,
                 sectlog = 121, agblklog = 124, inprogress = 126, features_compat = 208, features_ro_compat = 212,
                 features_incompat = 216, features_log_incompat = 220, crc = 224, meta_uuid = 248, end = 264;
}
// Allocation group free-space header (xfs_agf), one sector after the AG's superblock.
namespace agf {
constexpr size_t magic = 0, versionnum = 4, seqno = 8, length = 12, bno_root = 16, bno_level = 28, flfirst = 40,
                 fllast = 44, flcount = 48, freeblks = 52, uuid = 64, crc = 216, end = 224;
}
// The AG free list (xfs_agfl), the AG's fourth sector: on v5 a header, then big-endian block numbers.
namespace agfl {
constexpr size_t magic = 0, seqno = 4, uuid = 8, crc = 32, header_v5 = 36;
}
// Short-form B+tree block header: 16 bytes (v4), 56 with the v5 self-describing fields.
namespace bt {
constexpr size_t magic = 0, level = 4, numrecs = 6, leftsib = 8, rightsib = 12, blkno = 16, uuid = 32, owner = 48,
                 crc = 52;
constexpr size_t header_v4 = 16, header_v5 = 56;
}  // namespace bt
// Log record header (xlog_rec_header) and the operation header (xlog_op_header) that starts its data.
namespace log {
constexpr size_t magic = 0, cycle = 4, version = 8, len = 12, lsn = 16, tail_lsn = 24, num_logops = 40, size = 320;
constexpr size_t op_clientid = 8, op_flags = 9;
constexpr uint8_t kClientLog = 0xAA;     // XFS_LOG
constexpr uint8_t kUnmountTrans = 0x20;  // XLOG_UNMOUNT_TRANS
constexpr uint32_t kHeaderCycleSize = 32768;
constexpr uint32_t kMaxRecordBytes = 256 * 1024;  // XLOG_MAX_RECORD_BSIZE
}  // namespace log

// Superblock feature bits we accept (xfs_format.h of xfsprogs 6.1); anything else keeps the volume whole.
constexpr uint32_t kKnownRoCompat = 0xF;     // finobt, rmapbt, reflink, inobtcount
constexpr uint32_t kKnownIncompat = 0x2F;    // ftype, spinodes, meta_uuid, bigtime, nrext64 (not needsrepair)
constexpr uint32_t kIncompatMetaUuid = 0x4;  // btree blocks carry sb_meta_uuid instead of sb_uuid

// Is the internal log at [offset, offset + bytes) of the disk clean: its head record an unmount record?
// nullopt when it is; otherwise why not. Reads the log once, in chunks, keeping O(1) state.
Result<std::optional<std::string>> log_problem(disk::VirtualDisk& disk, uint64_t offset, uint64_t bytes);

}  // namespace vhdkit::fs::detail::xfs
