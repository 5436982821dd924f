// SPDX-License-Identifier: Apache-2.0
// vhdx::Image: one opened VHDX file with every structure parsed and validated, the log replayed, and the
// durable update primitives (header updates, log transactions) that writers use. The VirtualDisk view
// (vhdx_disk.h) and the compaction engine (src/compact) are built on it.
//
// Opening: header section -> log (replayed to disk when read-write, into an in-memory overlay when
// read-only: a read-only open never writes) -> metadata region -> BAT. Any structural problem is an error
// naming the structure, found before anything is written.
//
// Updating (read-write only), per [MS-VHDX]:
//   - begin_update() before the first change of a session: a new FileWriteGuid (and a new DataWriteGuid when
//     the change alters what the virtual disk reads), written by a header update.
//   - BAT, region and metadata changes only through commit(): a header update naming a fresh log, log entry,
//     flush, apply, flush, and a header update that clears LogGuid again (so that a run failing between two
//     transactions leaves no log to replay).
//   - close_log() when done (a no-op after commit(); kept for writers that leave the log open).
// Shrinking: commit a transaction that releases the tail blocks and calls set_file_size(n) (it starts a
// fresh log, so that no earlier entry describes the longer file); then
// file().truncate(n), file().flush(), set_file_size(n), close_log(). A crash anywhere in between reopens.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/file.h"
#include "vhdx/bat.h"
#include "vhdx/format.h"
#include "vhdx/headers.h"
#include "vhdx/log.h"
#include "vhdx/metadata.h"

namespace vhdkit::vhdx {

// Does a change alter the virtual disk's visible content? Moving a block does not; writing data does.
enum class ContentChange { Invisible, Visible };

// How far past its structures and blocks a log replay may grow the file (a writer may preallocate).
constexpr uint64_t kMaxLogGrowthSlack = 1 * GiB;

struct BlockEntry {
  uint8_t state = 0;         // a PayloadState value (or a reserved one, which open() rejects)
  uint64_t file_offset = 0;  // FileOffsetMB * 1 MiB (meaningful for FULLY/PARTIALLY_PRESENT)
  PayloadState payload_state() const { return static_cast<PayloadState>(state); }
  bool has_data() const { return holds_data(payload_state()); }
};

class Image {
 public:
  // Opens and validates. `file` must have been opened with the same access.
  static Result<std::unique_ptr<Image>> open(std::unique_ptr<io::File> file, io::Access access);

  // ---- What the file holds ----
  const std::string& path() const { return file_->path(); }
  io::Access access() const { return access_; }
  io::File& file() { return *file_; }
  const FileIdentifier& file_identifier() const { return section_.identifier; }
  // Both headers (with validity), which is current, both region tables, the regions found.
  const HeaderSection& header_section() const { return section_; }
  const Header& header() const { return section_.current_header(); }
  const RegionEntry& bat_region() const { return section_.bat_region; }
  const RegionEntry& metadata_region() const { return section_.metadata_region; }
  const Metadata& metadata() const { return metadata_; }
  const BatGeometry& geometry() const { return geometry_; }
  uint64_t chunk_ratio() const { return geometry_.chunk_ratio; }
  // The raw BAT (geometry().total_entries entries, payload and sector bitmap entries interleaved), held in
  // pages (bat_table.h): size() and operator[] as a vector's.
  const BatTable& bat() const { return bat_; }
  // Payload block `block` (0 .. payload_blocks-1): state and file offset.
  BlockEntry block(uint64_t block) const;
  // The sector bitmap block of chunk `chunk` (covering blocks chunk*ratio .. +ratio-1): state (BitmapState
  // value) and file offset. Bit i of the bitmap describes logical sector i of the chunk.
  BlockEntry sector_bitmap(uint64_t chunk) const;
  // Where the sector bitmap bits of payload block `block` lie in the file (one bit per logical sector,
  // sectors_per_block() / 8 bytes; the chunk's sector bitmap block must be present), and those bits.
  uint64_t block_bitmap_offset(uint64_t block) const;
  Result<Bytes> block_bitmap(uint64_t block);
  // File offset of the BAT entry with index i (for building BAT updates).
  uint64_t bat_entry_offset(uint64_t index) const { return bat_region().file_offset + index * 8; }
  // What the open replayed from the log (empty when the log was clean).
  const ReplayPlan& replayed_log() const { return replayed_; }
  // The file's size (as a read-only open sees it, including growth a replayed log asks for).
  uint64_t file_size() const { return file_size_; }
  // The end of everything in use (structures and blocks), 1 MiB aligned: where a new block can go.
  uint64_t allocation_end() const;
  // The end of the last structure or block (not rounded, not counting the file's size).
  uint64_t structures_end() const;
  // Reads file bytes, as the replayed log says they are (the overlay matters only for read-only opens).
  Status read_file(uint64_t offset, std::span<std::byte> buf);

  // ---- Updating (read-write) ----
  Status begin_update(ContentChange change);
  // Starts a transaction with the BAT sectors that hold the given new entries (index, raw entry value),
  // merged with the current BAT. More changes (zeros, file size) may be added before commit().
  void add_bat_changes(LogTransaction& tx, std::span<const std::pair<uint64_t, uint64_t>> changes) const;
  // Makes tx durable through the log, and refreshes the in-memory BAT and metadata it touched.
  Status commit(const LogTransaction& tx);
  // Clears LogGuid (a header update) if this session wrote log entries; the file then needs no replay.
  Status close_log();
  // Notes a file size change made outside the log (new blocks appended by the writer, a truncation).
  void set_file_size(uint64_t size) { file_size_ = size; }

 private:
  Image(std::unique_ptr<io::File> file, io::Access access) : file_(std::move(file)), access_(access) {}
  static Result<std::unique_ptr<Image>> open_unchecked(std::unique_ptr<io::File> file, io::Access access);
  Status load(uint64_t actual_size);
  Status load_metadata_and_bat();
  Status check_bat() const;  // the placement rules over the whole table (bat_problems)
  Status require_writable() const;

  std::unique_ptr<io::File> file_;
  io::Access access_;
  HeaderSection section_;
  ReplayPlan replayed_;
  bool overlay_active_ = false;
  Metadata metadata_;
  BatGeometry geometry_;
  BatTable bat_;
  uint64_t file_size_ = 0;
  bool file_guid_changed_ = false;
  bool data_guid_changed_ = false;
  std::optional<LogCursor> log_;  // set once this session has a LogGuid in the header
};

}  // namespace vhdkit::vhdx
