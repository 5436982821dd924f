// SPDX-License-Identifier: Apache-2.0
#include "vhdx/image.h"

#include <fmt/format.h>

#include <algorithm>
#include <new>

#include "core/checked.h"

namespace vhdkit::vhdx {

Result<std::unique_ptr<Image>> Image::open(std::unique_ptr<io::File> file, io::Access access) {
  // Every allocation sized from the file is bounded; should one still fail, the caller gets an error, not an
  // abort.
  std::string path = file->path();
  try {
    return open_unchecked(std::move(file), access);
  } catch (const std::bad_alloc&) {
    return fail(ReturnCode::OutOfMemory, path, "not enough memory to open the image");
  }
}

Result<std::unique_ptr<Image>> Image::open_unchecked(std::unique_ptr<io::File> file, io::Access access) {
  // Locks are the dispatcher's (image::open_image, durability rule D9): the file arrives locked.
  std::unique_ptr<Image> image(new Image(std::move(file), access));
  VHDKIT_ASSIGN(uint64_t size, image->file_->size());
  VHDKIT_TRY(image->load(size));
  return image;
}

Status Image::load(uint64_t actual_size) {
  VHDKIT_ASSIGN(section_, read_header_section(*file_, actual_size));
  VHDKIT_ASSIGN(replayed_, read_log(*file_, header(), actual_size));
  // Everything is validated through the in-memory overlay first, so that a file we reject is never written,
  // not even by a log replay.
  overlay_active_ = !replayed_.empty();
  file_size_ = std::max(actual_size, replayed_.last_file_offset);
  VHDKIT_TRY(load_metadata_and_bat());
  if (replayed_.last_file_offset > actual_size) {
    // A log may grow the file to hold what its BAT now names, not to an arbitrary size: a replay that would make
    // a sparse file of terabytes (or fail half-way on a file system that cannot) is refused before it starts.
    uint64_t needed = round_up(structures_end(), kAlignment) + kMaxLogGrowthSlack;
    if (replayed_.last_file_offset > needed)
      return fail(ReturnCode::Failed, path(),
                  fmt::format("the log's head entry (sequence {}) would grow the file to {} bytes (LastFileOffset), "
                              "far past the {} bytes its structures and blocks use; the log cannot be replayed",
                              replayed_.head_sequence, replayed_.last_file_offset, structures_end()));
  }
  if (access_ == io::Access::ReadWrite && !header().log_guid.is_zero()) {
    // [MS-VHDX] 2.2.2: FileWriteGuid changes before the first modification, log playback included.
    VHDKIT_TRY(begin_update(ContentChange::Invisible));
    VHDKIT_TRY(apply_replay(*file_, replayed_));
    overlay_active_ = false;
    Header h = header();
    h.log_guid = Guid{};
    VHDKIT_TRY(write_header_update(*file_, section_, h));
    VHDKIT_ASSIGN(file_size_, file_->size());
  }
  return ok();
}

Status Image::load_metadata_and_bat() {
  const RegionEntry& mr = metadata_region();
  VHDKIT_ASSIGN(metadata_, parse_metadata(
                               mr.length,
                               [&](uint64_t offset, std::span<std::byte> out) -> Status {
                                 if (Status r = read_file(mr.file_offset + offset, out); !r)
                                   return fail(r.error().with_context(
                                       fmt::format("reading the metadata region ({} bytes at offset {})", out.size(),
                                                   mr.file_offset + offset)));
                                 return ok();
                               },
                               path()));
  geometry_ = BatGeometry::make(metadata_.virtual_size, metadata_.block_size, metadata_.logical_sector_size,
                                metadata_.has_parent);
  geometry_.leave_block_allocated = metadata_.leave_block_allocated;
  const RegionEntry& br = bat_region();
  if (geometry_.total_entries > br.length / 8)
    return fail(ReturnCode::Failed, path(),
                fmt::format("the BAT region is {} bytes, but a {}-byte disk with {}-byte blocks needs {} entries ({} "
                            "bytes)",
                            br.length, metadata_.virtual_size, metadata_.block_size, geometry_.total_entries,
                            geometry_.total_entries * 8));
  // Read in pieces and held compactly: a 64 TiB disk of 1 MiB blocks has a 512 MiB BAT, mostly runs of
  // NOT_PRESENT entries that a page holds as one value.
  VHDKIT_ASSIGN(bat_, BatTable::read(
                          geometry_.total_entries, geometry_.chunk_ratio, br.file_offset,
                          [&](uint64_t offset, std::span<std::byte> out) { return read_file(offset, out); }, path()));

  return check_bat();
}

Status Image::check_bat() const {
  FileLayout layout{file_size_, {{0, kHeaderSectionSize}, {header().log_offset, header().log_length}}};
  for (const RegionEntry& r : section_.region_tables[section_.region_table_used].table.entries)
    layout.reserved.emplace_back(r.file_offset, r.length);
  std::vector<std::string> problems = bat_problems(geometry_, bat_, layout);
  if (!problems.empty()) {
    std::string more = problems.size() > 1 ? fmt::format(" (and {} more BAT problems)", problems.size() - 1) : "";
    return fail(ReturnCode::Failed, path(), problems.front() + more);
  }
  return ok();
}

BlockEntry Image::block(uint64_t b) const {
  uint64_t e = bat_.payload(b);
  return {bat_state(e), bat_file_offset(e)};
}

BlockEntry Image::sector_bitmap(uint64_t chunk) const {
  if (geometry_.bitmap_index(chunk) >= bat_.size()) return {};
  uint64_t e = bat_.bitmap(chunk);
  return {bat_state(e), bat_file_offset(e)};
}

uint64_t Image::block_bitmap_offset(uint64_t block) const {
  return sector_bitmap(block / geometry_.chunk_ratio).file_offset +
         (block % geometry_.chunk_ratio) * (geometry_.sectors_per_block() / 8);
}

Result<Bytes> Image::block_bitmap(uint64_t block) {
  Bytes bits(geometry_.sectors_per_block() / 8);
  VHDKIT_TRY(read_file(block_bitmap_offset(block), bits));
  return bits;
}

uint64_t Image::allocation_end() const { return round_up(std::max(file_size_, structures_end()), kAlignment); }

uint64_t Image::structures_end() const {
  uint64_t end = header().log_offset + header().log_length;
  for (const RegionEntry& r : section_.region_tables[section_.region_table_used].table.entries)
    end = std::max(end, r.file_offset + r.length);
  for (uint64_t b = 0; b < geometry_.payload_blocks; ++b)
    if (holds_data(bat_state(bat_.payload(b))))
      end = std::max(end, bat_file_offset(bat_.payload(b)) + geometry_.block_size);
  for (uint64_t chunk = 0; chunk < geometry_.bitmap_blocks; ++chunk) {
    BlockEntry e = sector_bitmap(chunk);
    if (e.state == static_cast<uint8_t>(BitmapState::Present))
      end = std::max(end, e.file_offset + kSectorBitmapBlockSize);
  }
  return end;
}

Status Image::read_file(uint64_t offset, std::span<std::byte> buf) {
  // Bytes past the real end of the file but inside a replayed LastFileOffset read as zeros.
  VHDKIT_ASSIGN(size_t n, file_->read_up_to(offset, buf));
  if (n < buf.size()) {
    if (offset + buf.size() > file_size_)
      return fail(ReturnCode::Failed, path(),
                  fmt::format("unexpected end of file: wanted {} bytes at offset {}, the file ends at {}", buf.size(),
                              offset, file_size_));
    std::fill(buf.begin() + static_cast<std::ptrdiff_t>(n), buf.end(), std::byte{0});
  }
  if (overlay_active_) replayed_.overlay(offset, buf);
  return ok();
}

Status Image::require_writable() const {
  if (access_ != io::Access::ReadWrite) return fail(ReturnCode::InvalidState, path(), "the image is open read-only");
  return ok();
}

Status Image::begin_update(ContentChange change) {
  VHDKIT_TRY(require_writable());
  bool new_data_guid = change == ContentChange::Visible && !data_guid_changed_;
  if (file_guid_changed_ && !new_data_guid) return ok();
  Header h = header();
  if (!file_guid_changed_) h.file_write_guid = Guid::random();
  if (new_data_guid) h.data_write_guid = Guid::random();
  VHDKIT_TRY(write_header_update(*file_, section_, h));
  file_guid_changed_ = true;
  data_guid_changed_ = data_guid_changed_ || new_data_guid;
  return ok();
}

void Image::add_bat_changes(LogTransaction& tx, std::span<const std::pair<uint64_t, uint64_t>> changes) const {
  // Start each touched sector from the current BAT (or from what tx already holds for it).
  std::map<uint64_t, Bytes> sectors;
  for (auto [index, value] : changes) {
    uint64_t at = bat_entry_offset(index);
    uint64_t sector = at / kLogSectorSize * kLogSectorSize;
    auto it = sectors.find(sector);
    if (it == sectors.end()) {
      Bytes bytes(kLogSectorSize);
      auto pending = tx.sectors().find(sector);
      if (pending != tx.sectors().end()) {
        bytes = pending->second;
      } else {
        uint64_t first = (sector - bat_region().file_offset) / 8;
        for (uint64_t i = 0; i < kLogSectorSize / 8; ++i)
          store_le<uint64_t>(bytes.data() + i * 8, first + i < bat_.size() ? bat_[first + i] : 0);
      }
      it = sectors.emplace(sector, std::move(bytes)).first;
    }
    store_le<uint64_t>(it->second.data() + (at - sector), value);
  }
  for (const auto& [sector, bytes] : sectors) tx.write_sector(sector, bytes);
}

Status Image::commit(const LogTransaction& tx) {
  if (tx.empty()) return ok();
  VHDKIT_TRY(begin_update(ContentChange::Invisible));
  // A shrinking transaction starts a fresh log (a new LogGuid): the earlier entries of this session record
  // a FlushedFileOffset beyond the new end, and a reader that replays the whole chain of entries (qemu
  // does, whatever the head's Tail says) would take the shorter file for a truncated one and refuse it.
  VHDKIT_ASSIGN(uint64_t size_now, file_->size());
  if (tx.file_size() && *tx.file_size() < size_now) VHDKIT_TRY(close_log());
  if (!log_) {
    Header h = header();
    h.log_guid = Guid::random();
    VHDKIT_TRY(write_header_update(*file_, section_, h));
    log_ = LogCursor{h.log_offset, h.log_length, h.log_guid, 0, 1};
  }
  VHDKIT_TRY(commit_transaction(*file_, *log_, tx, size_now));
  // Applied and flushed: the log is closed at once, so that a run failing later (a failed copy, flush or the
  // next transaction) leaves a file that readers open without a replay (qemu refuses a read-only open of a
  // dirty log). The log is open only from a transaction's entry to its closing header update; a failure in
  // between leaves a file that a read-write open (vhdkit's or qemu's) replays.
  VHDKIT_TRY(close_log());
  VHDKIT_ASSIGN(file_size_, file_->size());

  // Refresh what the transaction changed.
  auto touches = [&](const RegionEntry& r) {
    for (const auto& [offset, data] : tx.sectors())
      if (offset < r.file_offset + r.length && offset + kLogSectorSize > r.file_offset) return true;
    for (const auto& [offset, length] : tx.zeros())
      if (offset < r.file_offset + r.length && offset + length > r.file_offset) return true;
    return false;
  };
  bool bat_zeroed = false;
  for (const auto& [offset, length] : tx.zeros())
    bat_zeroed = bat_zeroed || ranges_overlap(offset, length, bat_region().file_offset, bat_region().length);
  if (touches(metadata_region()) || bat_zeroed) return load_metadata_and_bat();
  if (!touches(bat_region())) return ok();
  // Only BAT sectors changed: the table takes their entries (a 64 TiB disk's table is not read again), and the
  // placement rules are checked once more over the whole table, as after reading it.
  const RegionEntry& br = bat_region();
  for (const auto& [offset, data] : tx.sectors()) {
    if (offset < br.file_offset || offset >= br.file_offset + br.length) continue;
    for (uint64_t k = 0; k < kLogSectorSize / 8; ++k) {
      uint64_t index = (offset - br.file_offset) / 8 + k;
      if (index < bat_.size()) VHDKIT_TRY(bat_.set(index, load_le<uint64_t>(data.data() + k * 8), path()));
    }
  }
  return check_bat();
}

Status Image::close_log() {
  if (!log_) return ok();
  Header h = header();
  h.log_guid = Guid{};
  VHDKIT_TRY(write_header_update(*file_, section_, h));
  log_.reset();
  return ok();
}

}  // namespace vhdkit::vhdx
