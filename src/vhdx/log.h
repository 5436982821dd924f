// SPDX-License-Identifier: Apache-2.0
// The VHDX metadata log ([MS-VHDX] 2.3): reading and replaying what is in it, and writing new entries.
//
// Reading: every valid entry (signature, CRC-32C, LogGuid, descriptor and data-sector sequence numbers)
// is found; chains of entries with contiguous sequence numbers that contain their head's Tail are
// candidate sequences; the active one is the candidate with the highest head sequence number. Replaying
// it means applying its data and zero descriptors in order, from the tail entry to the head entry, and
// growing the file to the head's LastFileOffset. The result is a ReplayPlan, which the image either writes
// to disk (read-write open) or keeps as an in-memory overlay over the file (read-only open).
//
// Writing: a LogTransaction collects 4 KiB sector updates, zero ranges and a target file size; commit()
// writes them as log entries, flushes, applies them to their places, and flushes again.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/file.h"
#include "vhdx/format.h"

namespace vhdkit::vhdx {

// One change a log entry makes: `data` bytes at `offset`, or `length` zero bytes when data is empty.
struct LogOp {
  uint64_t offset = 0;
  uint64_t length = 0;
  Bytes data;
};

struct ReplayPlan {
  std::vector<LogOp> ops;         // in replay order
  uint64_t last_file_offset = 0;  // the head entry's LastFileOffset: the file must be at least this big
  uint64_t head_sequence = 0;
  size_t entry_count = 0;            // entries in the active sequence
  std::vector<std::string> ignored;  // entries that were found but are not replayed, and why

  bool empty() const { return entry_count == 0; }
  // Lays the replayed changes over buf, which holds the file's bytes at file_offset.
  void overlay(uint64_t file_offset, std::span<std::byte> buf) const;
};

// Reads the log that `header` describes. An all-zero LogGuid means the log is empty (nothing to replay).
// Entries that fail validation are not part of any sequence (a torn last write is normal after a crash);
// the plan lists them in `ignored`. A valid entry that asks for something impossible (writing into the
// header section, offsets not 4 KiB aligned, a file truncated below its FlushedFileOffset) is an error.
Result<ReplayPlan> read_log(io::File& file, const Header& header, uint64_t file_size);

// Writes a replay plan to its places, grows the file to last_file_offset, and flushes.
Status apply_replay(io::File& file, const ReplayPlan& plan);

// ---- Writing --------------------------------------------------------------------------------------------

// A set of metadata changes made durable together (one log entry when they fit the log; see commit()).
// Offsets and lengths are 4 KiB multiples. The compaction engineer's BAT updates, block moves' BAT
// changes and the final shrink all go through one of these.
class LogTransaction {
 public:
  // Replaces the 4 KiB sector at file_offset. A later write to the same sector replaces the earlier one.
  void write_sector(uint64_t file_offset, std::span<const std::byte> sector);
  // Replaces whole sectors: data.size() is a 4 KiB multiple.
  void write(uint64_t file_offset, std::span<const std::byte> data);
  // Zeros [file_offset, file_offset + length) (a zero descriptor: no data sectors in the log).
  void zero(uint64_t file_offset, uint64_t length);
  // The file size after the transaction. Larger than now: the file grows when the entry is applied.
  // Smaller: the entry records it (LastFileOffset, and FlushedFileOffset no larger) before the caller
  // truncates the file; a replay never shrinks a file.
  void set_file_size(uint64_t size) { file_size_ = size; }

  bool empty() const { return sectors_.empty() && zeros_.empty() && !file_size_; }
  const std::map<uint64_t, Bytes>& sectors() const { return sectors_; }
  const std::vector<std::pair<uint64_t, uint64_t>>& zeros() const { return zeros_; }
  const std::optional<uint64_t>& file_size() const { return file_size_; }

 private:
  std::map<uint64_t, Bytes> sectors_;
  std::vector<std::pair<uint64_t, uint64_t>> zeros_;
  std::optional<uint64_t> file_size_;
};

// Where the next entry goes. The writer makes every entry its own tail (everything before it has been
// applied and flushed), so a replay after a crash re-applies at most the last entry.
struct LogCursor {
  uint64_t log_offset = 0;  // header LogOffset
  uint32_t log_length = 0;  // header LogLength
  Guid log_guid;            // header LogGuid (must be non-zero and already durable in the header)
  uint32_t head = 0;        // log-relative offset of the next entry
  uint64_t sequence = 1;    // its sequence number
};

// The number of 4 KiB data sectors one entry can carry in a log of this length.
uint64_t max_data_sectors_per_entry(uint32_t log_length);

// Writes `tx` as log entries (one, unless it is larger than the log can hold), flushes, applies each
// change to its place, flushes. current_file_size is the file's size now (FlushedFileOffset).
// Zero ranges are applied before sector writes within one entry; a sector both zeroed and written ends
// up with the written data.
Status commit_transaction(io::File& file, LogCursor& cursor, const LogTransaction& tx, uint64_t current_file_size);

}  // namespace vhdkit::vhdx
