// SPDX-License-Identifier: Apache-2.0
#include "compact/vhd_compaction.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "compact/block_scan.h"
#include "compact/used_scan.h"
#include "core/bytes.h"
#include "vhd/vhd_image.h"

namespace vhdkit::vhd {
namespace {

using compact::Move;
using compact::PlanInput;
using compact::Slot;
using compact::Verdict;

// classify_holes reads at most this much of a block's data: the two host blocks it shares with bitmaps.
constexpr uint64_t kHoleEdgeBytes = 2 * 4096;

// A dynamic or differencing vhd::Image (which validated every structure when it opened: footer, header,
// BAT, locators, no block overlapping another or the metadata) driven through the compaction steps.
class VhdCompaction final : public compact::CompactableImage {
 public:
  explicit VhdCompaction(std::unique_ptr<Image> image) : image_(std::move(image)) {}

  const std::string& path() const override { return image_->path(); }
  disk::Format format() const override { return disk::Format::Vhd; }
  disk::DiskType type() const override { return image_->type(); }
  uint64_t block_size() const override { return image_->block_size(); }
  uint64_t block_count() const override { return image_->block_count(); }
  uint64_t blocks_allocated() const override {
    return std::count_if(image_->bat().begin(), image_->bat().end(), [](uint32_t e) { return e != kUnallocated; });
  }
  io::File& file() override { return image_->file(); }
  disk::VirtualDisk& disk() override { return *image_; }

  Result<PlanInput> layout() override {
    PlanInput in;
    in.trailer_size = kFooterSize;
    in.file_size = image_->metadata().file_size;
    for (const Region& r : image_->metadata().regions) in.fixed.push_back({r.offset, r.length});
    const auto& bat = image_->bat();
    for (uint64_t b = 0; b < bat.size(); ++b) {
      if (bat[b] != kUnallocated)
        in.slots.push_back({b, image_->bitmap_offset(b), image_->block_stride(), Verdict::Keep});
    }
    in.alignment = compact::slot_alignment(in.slots);
    return in;
  }

  Result<Verdict> classify(const Slot& slot) override {
    VHDKIT_ASSIGN(std::vector<io::ByteRun> stored, image_->file().data_ranges(slot.offset, slot.length));
    auto read = [&](uint64_t offset, std::span<std::byte> b) {
      return compact::read_skipping_holes(
          [&](uint64_t at, std::span<std::byte> part) { return image_->file().read_at(at, part); }, stored, offset, b);
    };
    if (image_->type() == disk::DiskType::Dynamic) {
      // A released block reads as zeros, so only a block whose stored data is all zeros may go (whatever
      // its bitmap says: qemu ignores the bitmap of a dynamic disk). Read piece by piece: a block with data
      // usually shows it in the first. Holes in the host file are zeros and are not read.
      bool zero = true;
      auto zero_piece = [&](uint64_t, std::span<const std::byte> d) -> Result<bool> { return zero = all_zero(d); };
      auto ahead = [&](uint64_t offset, uint64_t length) { image_->file().prefetch(offset, length); };
      VHDKIT_TRY(compact::scan_pieces(read, slot.offset + image_->bitmap_size(), image_->block_size(), buf_, zero_piece,
                                      ahead));
      return zero ? Verdict::Release : Verdict::Keep;
    }
    // One sequential read of the whole slot (bitmap and data): every present sector is compared.
    buf_.resize(image_->block_stride());
    VHDKIT_TRY(read(slot.offset, buf_));
    std::span<const std::byte> bitmap = std::span(buf_).first(image_->bitmap_size());
    std::span<const std::byte> data = std::span(buf_).subspan(image_->bitmap_size());
    return classify_differencing(slot.block, bitmap, data);
  }

  // Dynamic: a block whose data is all holes reads zeros, as a released one does. Differencing: the same
  // only when no sector is present (the bitmap, one small read): present sectors read zeros here, and a VHD
  // has no state that says so. A VHD's data starts 512 bytes past a 4 KiB boundary where qemu placed it, so
  // the host blocks at its two edges (shared with the bitmaps) hold data: those few KiB are read.
  Result<std::optional<Verdict>> classify_holes(const Slot& slot) override {
    const uint64_t data = slot.offset + image_->bitmap_size();
    VHDKIT_ASSIGN(std::vector<io::ByteRun> stored, image_->file().data_ranges(data, image_->block_size()));
    uint64_t stored_bytes = 0;
    for (const io::ByteRun& r : stored) stored_bytes += r.length;
    if (stored_bytes > kHoleEdgeBytes) return std::nullopt;
    auto read = [&](uint64_t at, std::span<std::byte> part) { return image_->file().read_at(at, part); };
    for (const io::ByteRun& r : stored) {
      buf_.resize(r.length);
      VHDKIT_TRY(read(r.offset, buf_));
      if (!all_zero(buf_)) return std::nullopt;
    }
    if (image_->type() == disk::DiskType::Dynamic) return Verdict::Release;
    Bytes bitmap(image_->bitmap_size());
    VHDKIT_TRY(read(slot.offset, bitmap));
    if (all_zero(bitmap)) return Verdict::Release;
    return std::nullopt;
  }

  Result<std::vector<compact::StoredRun>> stored_runs() override {
    std::vector<compact::StoredRun> runs;
    const uint64_t size = image_->virtual_size();
    if (image_->type() == disk::DiskType::Fixed) {
      if (size != 0) runs.push_back({0, 0, size});  // the data area: the file up to its footer
      return runs;
    }
    const auto& bat = image_->bat();
    for (uint64_t b = 0; b < bat.size(); ++b) {
      if (bat[b] == kUnallocated) continue;
      fs::ByteRange v = compact::block_extent(b, image_->block_size(), size);
      if (v.length != 0) runs.push_back({v.offset, image_->data_offset(b), v.length});
    }
    std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a.file_offset < b.file_offset; });
    return runs;
  }

  std::optional<fs::ByteRange> virtual_extent(const Slot& slot) const override {
    return compact::block_extent(slot.block, image_->block_size(), image_->virtual_size());
  }

  Result<Verdict> classify_used(const Slot& slot, std::span<const fs::ByteRange> used) override {
    if (used.empty()) return Verdict::Release;
    if (image_->type() == disk::DiskType::Dynamic) {
      // The stored data, whatever the bitmap says (as classify reads it): qemu reads it so.
      const uint64_t data = slot.offset + image_->bitmap_size();
      const uint64_t start = slot.block * image_->block_size();  // used lies inside the block: start is exact
      VHDKIT_ASSIGN(std::vector<io::ByteRun> stored, image_->file().data_ranges(data, image_->block_size()));
      auto read = [&](uint64_t at, std::span<std::byte> b) {
        return compact::read_skipping_holes(
            [&](uint64_t o, std::span<std::byte> part) { return image_->file().read_at(o, part); }, stored,
            data + (at - start), b);
      };
      VHDKIT_ASSIGN(bool zero, compact::used_bytes_zero(read, used, buf_));
      return zero ? Verdict::Release : Verdict::Keep;
    }
    // A VHD has no ZERO state: a released block reads the parent, so only that may be what the used bytes read.
    VHDKIT_ASSIGN(compact::UsedReading r, compact::read_used_against_parent(*image_, used, buf_, parent_buf_));
    return r.same_as_parent ? Verdict::Release : Verdict::Keep;
  }

  Status release(std::span<const Slot> slots) override {
    for (const Slot& s : slots) VHDKIT_TRY(image_->write_bat_entry(s.block, kUnallocated));
    return image_->flush();
  }

  Status remap(std::span<const Move> moves) override {
    for (const Move& m : moves) {
      VHDKIT_TRY(image_->write_bat_entry(m.block, static_cast<uint32_t>(m.to / kSectorSize)));
    }
    return image_->flush();
  }

  std::string note() const override {
    if (image_->type() != disk::DiskType::Differencing) return {};
    return "in a differencing disk a block is released only where the parent reads the same";
  }

  Status shrink(uint64_t new_file_size) override {
    VHDKIT_TRY(image_->write_footer_at(new_file_size - kFooterSize));
    VHDKIT_TRY(image_->flush());
    VHDKIT_TRY(image_->file().truncate(new_file_size));
    return image_->flush();
  }

 private:
  // Release only when the child reads the same without the block: no sector present, or every present
  // sector equal to what the parent chain returns there.
  Result<Verdict> classify_differencing(uint64_t block, std::span<const std::byte> bitmap,
                                        std::span<const std::byte> data) {
    if (all_zero(bitmap)) return Verdict::Release;
    const uint64_t start = block * image_->block_size();
    const uint64_t size = image_->virtual_size();
    if (start >= size) return Verdict::Keep;
    const uint64_t len = std::min<uint64_t>(image_->block_size(), size - start);
    parent_buf_.resize(len);
    VHDKIT_TRY(image_->parent()->read(start, parent_buf_));
    for (uint64_t s = 0; s < image_->block_size() / kSectorSize; ++s) {
      if (!sector_present(bitmap, s)) continue;
      if ((s + 1) * kSectorSize > len) return Verdict::Keep;  // present past the disk's end: leave it be
      if (std::memcmp(data.data() + s * kSectorSize, parent_buf_.data() + s * kSectorSize, kSectorSize) != 0)
        return Verdict::Keep;
    }
    return Verdict::Release;
  }

  std::unique_ptr<Image> image_;
  Bytes buf_;
  Bytes parent_buf_;
};

}  // namespace

Status check_compactable(disk::VirtualDisk& disk, compact::Mode mode) {
  auto* image = dynamic_cast<Image*>(&disk);
  if (!image) return fail(ReturnCode::InvalidParameter, disk.path(), "not opened as a VHD");
  if (image->type() == disk::DiskType::Fixed && mode != compact::Mode::Retrim) {
    return fail(ReturnCode::NotSupported, disk.path(),
                fmt::format("a fixed VHD keeps its size by definition: it has no block table, every virtual byte "
                            "has its own place in the file, so {} has no blocks to release or move; Retrim "
                            "(--mode retrim, Mode 2) gives its unused space back to the host file system by "
                            "punching holes in the file",
                            compact::to_string(mode)));
  }
  if (!image->metadata().write_refusal.empty())
    return fail(ReturnCode::NotSupported, disk.path(), "cannot compact: " + image->metadata().write_refusal);
  if (image->metadata().footer_offset % kSectorSize != 0) {
    return fail(ReturnCode::NotSupported, disk.path(),
                "this VHD ends in a 511-byte footer (written before Virtual PC 2004); compacting it would need "
                "a footer rewrite first: convert it with qemu-img");
  }
  return ok();
}

Result<std::unique_ptr<compact::CompactableImage>> make_compactable(std::unique_ptr<disk::VirtualDisk> disk,
                                                                    compact::Mode mode) {
  VHDKIT_TRY(check_compactable(*disk, mode));
  std::unique_ptr<Image> image(static_cast<Image*>(disk.release()));
  return std::unique_ptr<compact::CompactableImage>(std::make_unique<VhdCompaction>(std::move(image)));
}

}  // namespace vhdkit::vhd
