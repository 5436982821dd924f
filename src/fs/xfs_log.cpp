// SPDX-License-Identifier: Apache-2.0
// Is an XFS internal log clean? The log is a ring of 512-byte basic blocks; each carries the cycle number
// (the count of passes over the ring) of the write that stored it: the first word of a data block, the
// h_cycle field of a record header (whose first word is the magic). A log written to its head in pass C
// reads C on [0, head) and C-1 on [head, end). A clean unmount leaves, as the very last record before the
// head, a record of one operation flagged XLOG_UNMOUNT_TRANS (the kernel's xlog_check_unmount_rec asks the
// same). Anything else - cycle numbers out of that order (torn writes of a crash), no record before the
// head, a last record that is not an unmount record - means transactions may wait for replay: not clean.
#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "core/bytes.h"
#include "fs/partition_table.h"
#include "fs/xfs_format.h"

namespace vhdkit::fs::detail::xfs {
namespace {

constexpr uint64_t kBB = 512;
constexpr uint64_t kChunk = uint64_t{1} << 20;

struct Scan {
  uint64_t head = 0;                        // the first block of the older pass (0: the ring ends exactly at its end)
  uint64_t cycle = 0;                       // pass of block 0
  std::optional<uint64_t> last_header_new;  // the last record header of pass `cycle`
  std::optional<uint64_t> last_header_old;  // the last record header of pass `cycle - 1`
};

}  // namespace

Result<std::optional<std::string>> log_problem(disk::VirtualDisk& d, uint64_t offset, uint64_t bytes) {
  const uint64_t blocks = bytes / kBB;
  if (blocks < 2) return std::optional<std::string>("the log is too small");
  Scan s;
  bool in_old = false;
  std::vector<std::byte> buf;
  for (uint64_t pos = 0; pos < blocks;) {
    const uint64_t n = std::min(kChunk / kBB, blocks - pos);
    buf.resize(n * kBB);
    VHDKIT_TRY(read_exact(d, offset + pos * kBB, buf));
    for (uint64_t i = 0; i < n; ++i) {
      const std::byte* b = buf.data() + i * kBB;
      const bool header = load_be<uint32_t>(b) == kLogMagic;
      const uint32_t cycle = header ? load_be<uint32_t>(b + log::cycle) : load_be<uint32_t>(b);
      const uint64_t blk = pos + i;
      if (blk == 0) {
        if (cycle == 0) return std::optional<std::string>("the log was never written");
        s.cycle = cycle;
      }
      if (!in_old && cycle != s.cycle) {
        if (cycle != s.cycle - 1) {
          return std::optional<std::string>(
              fmt::format("the log's cycle numbers are out of order at block {} (a crash tore its last writes)", blk));
        }
        in_old = true;
        s.head = blk;
      } else if (in_old && cycle != s.cycle - 1) {
        return std::optional<std::string>(
            fmt::format("the log's cycle numbers are out of order at block {} (a crash tore its last writes)", blk));
      }
      if (header) (in_old ? s.last_header_old : s.last_header_new) = blk;
    }
    pos += n;
  }
  // The last record before the head: in this pass, or (for a record that wrapped round the ring's end) the
  // last one of the previous pass.
  std::optional<uint64_t> rec = s.last_header_new ? s.last_header_new : s.last_header_old;
  if (!rec) return std::optional<std::string>("no log record precedes the log's head");
  const uint64_t rec_cycle = s.last_header_new ? s.cycle : s.cycle - 1;

  std::vector<std::byte> h(kBB);
  VHDKIT_TRY(read_exact(d, offset + *rec * kBB, h));
  const uint32_t version = load_be<uint32_t>(&h[log::version]);
  const uint32_t len = load_be<uint32_t>(&h[log::len]);
  const uint64_t lsn = load_be<uint64_t>(&h[log::lsn]);
  if (version != 1 && version != 2) return std::optional<std::string>(fmt::format("log record version {}", version));
  if (len == 0 || len > log::kMaxRecordBytes)
    return std::optional<std::string>("the last log record's length is out of range");
  if (lsn != ((rec_cycle << 32) | *rec))
    return std::optional<std::string>("the last log record's sequence number disagrees with its place");
  uint64_t header_blocks = 1;
  if (version == 2) {
    const uint32_t iclog = load_be<uint32_t>(&h[log::size]);
    if (iclog > log::kMaxRecordBytes) return std::optional<std::string>("the log's buffer size is out of range");
    header_blocks = std::max<uint64_t>(1, (iclog + log::kHeaderCycleSize - 1) / log::kHeaderCycleSize);
  }
  const uint64_t end = (*rec + header_blocks + (len + kBB - 1) / kBB) % blocks;
  if (end != s.head) return std::optional<std::string>("the log holds records after its last unmount");
  if (load_be<uint32_t>(&h[log::num_logops]) != 1)
    return std::optional<std::string>("the log's last record is not an unmount record");
  std::vector<std::byte> op(kBB);
  VHDKIT_TRY(read_exact(d, offset + ((*rec + header_blocks) % blocks) * kBB, op));
  if (static_cast<uint8_t>(op[log::op_clientid]) != log::kClientLog ||
      !(static_cast<uint8_t>(op[log::op_flags]) & log::kUnmountTrans)) {
    return std::optional<std::string>("the log's last record is not an unmount record");
  }
  return std::optional<std::string>();
}

}  // namespace vhdkit::fs::detail::xfs
