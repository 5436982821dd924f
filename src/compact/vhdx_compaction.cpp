// SPDX-License-Identifier: Apache-2.0
#include "compact/vhdx_compaction.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "compact/block_scan.h"
#include "compact/used_scan.h"
#include "core/bytes.h"
#include "vhdx/vhdx_disk.h"

namespace vhdkit::vhdx {
namespace {

using compact::Move;
using compact::PlanInput;
using compact::Slot;
using compact::Verdict;

class VhdxCompaction final : public compact::CompactableImage {
 public:
  explicit VhdxCompaction(std::unique_ptr<disk::VirtualDisk> disk)
      : disk_(std::move(disk)), image_(*image_of(*disk_)) {}

  const std::string& path() const override { return image_.path(); }
  disk::Format format() const override { return disk::Format::Vhdx; }
  disk::DiskType type() const override {
    if (differencing()) return disk::DiskType::Differencing;
    return image_.metadata().leave_block_allocated ? disk::DiskType::Fixed : disk::DiskType::Dynamic;
  }
  uint64_t block_size() const override { return image_.metadata().block_size; }
  uint64_t block_count() const override { return image_.geometry().payload_blocks; }
  uint64_t blocks_allocated() const override {
    uint64_t n = 0;
    for (uint64_t b = 0; b < block_count(); ++b) n += image_.block(b).has_data();
    return n;
  }
  io::File& file() override { return image_.file(); }
  disk::VirtualDisk& disk() override { return *disk_; }

  // Slot.block is the BAT index (payload and sector bitmap entries share one index space).
  Result<PlanInput> layout() override {
    const BatGeometry& g = image_.geometry();
    PlanInput in;
    in.alignment = kAlignment;
    in.trailer_size = 0;
    in.file_size = image_.file_size();
    in.fixed.push_back({0, kHeaderSectionSize});
    in.fixed.push_back({image_.header().log_offset, image_.header().log_length});
    const HeaderSection& hs = image_.header_section();
    for (const RegionEntry& r : hs.region_tables[hs.region_table_used].table.entries)
      in.fixed.push_back({r.file_offset, r.length});
    retained_ = 0;
    for (uint64_t i = 0; i < image_.bat().size(); ++i) {
      uint64_t entry = image_.bat()[i];
      uint8_t state = bat_state(entry);
      uint64_t offset = bat_file_offset(entry);
      if (g.is_bitmap_index(i)) {
        if (state == static_cast<uint8_t>(BitmapState::Present))
          in.slots.push_back({i, offset, kSectorBitmapBlockSize, Verdict::Keep});
      } else if (holds_data(state)) {
        in.slots.push_back({i, offset, g.block_size, Verdict::Keep});
      } else if (offset != 0) {
        // No data, yet the entry still names file space (Hyper-V keeps it for ZERO/UNMAPPED blocks).
        in.slots.push_back({i, offset, g.block_size, Verdict::Release});
        target_[i] = state;
        ++retained_;
      }
    }
    return in;
  }

  Result<Verdict> classify(const Slot& slot) override {
    const BatGeometry& g = image_.geometry();
    if (g.is_bitmap_index(slot.block)) return Verdict::Keep;
    const uint64_t block = g.block_of_index(slot.block);
    const uint64_t start = block * g.block_size;
    const uint64_t length = std::min<uint64_t>(g.block_size, g.virtual_size - start);  // the rest is not on the disk
    std::optional<uint8_t> target;
    if (differencing()) {
      VHDKIT_ASSIGN(target, classify_differencing(block, slot.offset, start, length));
    } else {
      VHDKIT_ASSIGN(target, classify_dynamic(slot.offset, length));
    }
    if (!target) return Verdict::Keep;
    target_[slot.block] = *target;
    return Verdict::Release;
  }

  std::optional<fs::ByteRange> virtual_extent(const Slot& slot) const override {
    const BatGeometry& g = image_.geometry();
    if (g.is_bitmap_index(slot.block)) return std::nullopt;
    return compact::block_extent(g.block_of_index(slot.block), g.block_size, g.virtual_size);
  }

  Result<Verdict> classify_used(const Slot& slot, std::span<const fs::ByteRange> used) override {
    const BatGeometry& g = image_.geometry();
    if (g.is_bitmap_index(slot.block)) return Verdict::Keep;
    uint8_t target = static_cast<uint8_t>(PayloadState::NotPresent);
    if (!used.empty() && !differencing()) {
      // A dynamic VHDX holds only FULLY_PRESENT blocks: the used bytes lie at the same place in the block.
      const uint64_t start = g.block_of_index(slot.block) * g.block_size;
      VHDKIT_ASSIGN(std::vector<io::ByteRun> stored, host_data(slot.offset, slot.length));
      auto read = [&](uint64_t at, std::span<std::byte> b) {
        return compact::read_skipping_holes(
            [&](uint64_t o, std::span<std::byte> part) { return image_.read_file(o, part); }, stored,
            slot.offset + (at - start), b);
      };
      VHDKIT_ASSIGN(bool zero, compact::used_bytes_zero(read, used, data_));
      if (!zero) return Verdict::Keep;
    } else if (!used.empty()) {
      VHDKIT_ASSIGN(compact::UsedReading r, compact::read_used_against_parent(*disk_, used, data_, parent_));
      if (!r.same_as_parent && !r.zero) return Verdict::Keep;
      if (!r.same_as_parent) target = static_cast<uint8_t>(PayloadState::Zero);
    }
    target_[slot.block] = target;
    unused_bytes_may_change_.insert(slot.block);
    return Verdict::Release;
  }

  // A payload block whose bytes are all holes in the host file reads zeros: in a dynamic disk NOT_PRESENT
  // reads the same; in a differencing disk a FULLY_PRESENT one becomes ZERO (a PARTIALLY_PRESENT one reads
  // the parent's bytes where its bitmap is clear, so it is left to the scan).
  Result<std::optional<Verdict>> classify_holes(const Slot& slot) override {
    const BatGeometry& g = image_.geometry();
    if (g.is_bitmap_index(slot.block)) return std::nullopt;
    VHDKIT_ASSIGN(std::vector<io::ByteRun> stored, host_data(slot.offset, slot.length));
    if (!compact::all_hole(stored, slot.offset, slot.length)) return std::nullopt;
    uint8_t target = static_cast<uint8_t>(PayloadState::NotPresent);
    if (differencing()) {
      if (image_.block(g.block_of_index(slot.block)).payload_state() != PayloadState::FullyPresent) return std::nullopt;
      target = static_cast<uint8_t>(PayloadState::Zero);
    }
    target_[slot.block] = target;
    return Verdict::Release;
  }

  Result<std::vector<compact::StoredRun>> stored_runs() override {
    const BatGeometry& g = image_.geometry();
    std::vector<compact::StoredRun> runs;
    for (uint64_t b = 0; b < g.payload_blocks; ++b) {
      BlockEntry e = image_.block(b);
      if (!e.has_data()) continue;
      fs::ByteRange v = compact::block_extent(b, g.block_size, g.virtual_size);
      if (v.length != 0) runs.push_back({v.offset, e.file_offset, v.length});
    }
    std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a.file_offset < b.file_offset; });
    return runs;
  }

  Status begin_visible_change() override { return image_.begin_update(ContentChange::Visible); }

  Status release(std::span<const Slot> slots) override {
    // [MS-VHDX] 2.2.2: DataWriteGuid changes before the first change of what the disk reads. A block released
    // by the file-system rules may hold bytes (deleted files) that now read as zeros or as the parent's.
    if (std::any_of(slots.begin(), slots.end(),
                    [&](const Slot& s) { return unused_bytes_may_change_.contains(s.block); }))
      VHDKIT_TRY(image_.begin_update(ContentChange::Visible));
    std::vector<std::pair<uint64_t, uint64_t>> changes;
    for (const Slot& s : slots) changes.emplace_back(s.block, make_bat_entry(target_.at(s.block), 0));
    LogTransaction tx;
    image_.add_bat_changes(tx, changes);
    std::vector<uint64_t> had_data;
    for (const Slot& s : slots)
      if (holds_data(bat_state(image_.bat()[s.block]))) had_data.push_back(image_.geometry().block_of_index(s.block));
    VHDKIT_TRY(image_.commit(tx));
    if (!differencing()) return ok();
    return clear_bitmap_bits(had_data);
  }

  Status remap(std::span<const Move> moves) override {
    std::vector<std::pair<uint64_t, uint64_t>> changes;
    for (const Move& m : moves) changes.emplace_back(m.block, make_bat_entry(bat_state(image_.bat()[m.block]), m.to));
    LogTransaction tx;
    image_.add_bat_changes(tx, changes);
    return image_.commit(tx);
  }

  Status shrink(uint64_t new_file_size) override {
    // The log records the target size first: a replay after a crash then knows the shorter file is meant.
    LogTransaction tx;
    tx.set_file_size(new_file_size);
    VHDKIT_TRY(image_.commit(tx));
    VHDKIT_TRY(image_.file().truncate(new_file_size));
    VHDKIT_TRY(image_.file().flush());
    image_.set_file_size(new_file_size);
    return ok();
  }

  Status finish() override { return image_.close_log(); }

  std::string note() const override {
    std::vector<std::string> notes;
    if (differencing())
      notes.push_back(
          "in a differencing disk a block is released where the child reads what the parent reads "
          "(NOT_PRESENT) or where it reads zeros (ZERO)");
    if (retained_ != 0)
      notes.push_back(
          fmt::format("{} block{} without data (ZERO, UNMAPPED, ...) still held file space and gave "
                      "it back",
                      retained_, retained_ == 1 ? "" : "s"));
    return fmt::format("{}", fmt::join(notes, "; "));
  }

 private:
  bool differencing() const { return image_.metadata().has_parent; }

  // The host's data ranges of [offset, offset + length). A log replayed only in memory (a dry run) may write
  // where the file has a hole: then every byte counts as stored.
  Result<std::vector<io::ByteRun>> host_data(uint64_t offset, uint64_t length) {
    if (!image_.replayed_log().empty()) return std::vector<io::ByteRun>{{offset, length}};
    return image_.file().data_ranges(offset, length);
  }

  // Reads [0, length) of the block at file_offset piece by piece (compact/block_scan.h), through the
  // replayed log when a dry run left it in memory; holes in the host file are zeros and are not read.
  template <class Fn>
  Status scan_block(uint64_t file_offset, uint64_t length, Fn fn) {
    VHDKIT_ASSIGN(std::vector<io::ByteRun> stored, host_data(file_offset, length));
    auto read = [&](uint64_t offset, std::span<std::byte> buf) {
      return compact::read_skipping_holes(
          [&](uint64_t o, std::span<std::byte> part) { return image_.read_file(o, part); }, stored, offset, buf);
    };
    auto ahead = [&](uint64_t offset, uint64_t n) {
      if (image_.replayed_log().empty()) image_.file().prefetch(offset, n);
    };
    return compact::scan_pieces(read, file_offset, length, data_, fn, ahead);
  }

  // A dynamic disk reads zeros for a NOT_PRESENT block: only a block of zeros may go.
  Result<std::optional<uint8_t>> classify_dynamic(uint64_t file_offset, uint64_t length) {
    bool zero = true;
    auto zero_piece = [&](uint64_t, std::span<const std::byte> d) -> Result<bool> { return zero = all_zero(d); };
    VHDKIT_TRY(scan_block(file_offset, length, zero_piece));
    if (!zero) return std::nullopt;
    return static_cast<uint8_t>(PayloadState::NotPresent);
  }

  // The child reads, per sector, its own data where the block holds it (FULLY_PRESENT: everywhere;
  // PARTIALLY_PRESENT: where the sector bitmap bit is set) and the parent's elsewhere. Without the block it
  // would read the parent's data (NOT_PRESENT) or zeros (ZERO).
  Result<std::optional<uint8_t>> classify_differencing(uint64_t block, uint64_t file_offset, uint64_t start,
                                                       uint64_t length) {
    const bool partial = image_.block(block).payload_state() == PayloadState::PartiallyPresent;
    Bytes bits;
    if (partial) {
      VHDKIT_ASSIGN(bits, image_.block_bitmap(block));
    }
    const uint64_t sector = image_.metadata().logical_sector_size;
    bool same_as_parent = true, reads_zero = true;
    auto compare_piece = [&](uint64_t at, std::span<const std::byte> d) -> Result<bool> {
      parent_.resize(d.size());
      VHDKIT_TRY(disk_->parent()->read(start + at, parent_));
      std::span<const std::byte> p(parent_);
      if (!partial) {
        same_as_parent = same_as_parent && std::memcmp(d.data(), p.data(), d.size()) == 0;
        reads_zero = reads_zero && all_zero(d);
      } else {
        for (uint64_t s = 0; s < d.size(); s += sector) {
          uint64_t n = std::min<uint64_t>(sector, d.size() - s);
          if (sector_bit(bits, (at + s) / sector)) {
            same_as_parent = same_as_parent && std::memcmp(d.data() + s, p.data() + s, n) == 0;
            reads_zero = reads_zero && all_zero(d.subspan(s, n));
          } else {
            reads_zero = reads_zero && all_zero(p.subspan(s, n));
          }
        }
      }
      return same_as_parent || reads_zero;
    };
    VHDKIT_TRY(scan_block(file_offset, length, compare_piece));
    if (same_as_parent) return static_cast<uint8_t>(PayloadState::NotPresent);
    if (reads_zero) return static_cast<uint8_t>(PayloadState::Zero);
    return std::nullopt;
  }

  // Clears the sector bitmap bits of blocks that no longer hold data, so that a writer that later turns one
  // of them PARTIALLY_PRESENT finds no stale bits. Done after the BAT change is durable: no entry reads them.
  Status clear_bitmap_bits(const std::vector<uint64_t>& blocks) {
    const BatGeometry& g = image_.geometry();
    std::map<uint64_t, Bytes> sectors;  // 4 KiB sectors of sector bitmap blocks, as they will be
    for (uint64_t b : blocks) {
      if (image_.sector_bitmap(b / g.chunk_ratio).state != static_cast<uint8_t>(BitmapState::Present)) continue;
      uint64_t at = image_.block_bitmap_offset(b), end = at + g.sectors_per_block() / 8;
      while (at < end) {
        uint64_t sector = at / kLogSectorSize * kLogSectorSize;
        auto it = sectors.find(sector);
        if (it == sectors.end()) {
          Bytes bytes(kLogSectorSize);
          VHDKIT_TRY(image_.read_file(sector, bytes));
          it = sectors.emplace(sector, std::move(bytes)).first;
        }
        uint64_t n = std::min(end, sector + kLogSectorSize) - at;
        std::memset(it->second.data() + (at - sector), 0, n);
        at += n;
      }
    }
    LogTransaction tx;
    for (const auto& [offset, bytes] : sectors) tx.write_sector(offset, bytes);
    return image_.commit(tx);
  }

  std::unique_ptr<disk::VirtualDisk> disk_;
  Image& image_;
  std::unordered_map<uint64_t, uint8_t> target_;          // BAT index -> the state a released block gets
  std::unordered_set<uint64_t> unused_bytes_may_change_;  // BAT indexes released by the file-system rules
  uint64_t retained_ = 0;
  Bytes data_;
  Bytes parent_;
};

}  // namespace

Status check_compactable(disk::VirtualDisk& disk, compact::Mode mode) {
  Image* image = image_of(disk);
  if (!image) return fail(ReturnCode::InvalidParameter, disk.path(), "not opened as a VHDX");
  const Metadata& m = image->metadata();
  if (m.leave_block_allocated && !m.has_parent && mode != compact::Mode::Retrim) {
    return fail(ReturnCode::NotSupported, disk.path(),
                fmt::format("a fixed VHDX keeps its size by definition: its metadata asks that every block stay "
                            "allocated (LeaveBlockAllocated = 1), so {} may release no block and the file may not "
                            "shrink; Retrim (--mode retrim, Mode 2) gives its unused space back to the host file "
                            "system by punching holes in the file",
                            compact::to_string(mode)));
  }
  return ok();
}

Result<std::unique_ptr<compact::CompactableImage>> make_compactable(std::unique_ptr<disk::VirtualDisk> disk,
                                                                    compact::Mode mode) {
  VHDKIT_TRY(check_compactable(*disk, mode));
  return std::unique_ptr<compact::CompactableImage>(std::make_unique<VhdxCompaction>(std::move(disk)));
}

}  // namespace vhdkit::vhdx
