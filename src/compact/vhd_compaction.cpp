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
    if (image_->type() == disk::DiskType::Dynamic) {
      // A released block reads as zeros, so only a block whose stored data is all zeros may go (whatever
      // its bitmap says: qemu ignores the bitmap of a dynamic disk). Read piece by piece: a block with data
      // usually shows it in the first.
      bool zero = true;
      auto read = [&](uint64_t offset, std::span<std::byte> b) { return image_->file().read_at(offset, b); };
      auto zero_piece = [&](uint64_t, std::span<const std::byte> d) -> Result<bool> { return zero = all_zero(d); };
      VHDKIT_TRY(
          compact::scan_pieces(read, slot.offset + image_->bitmap_size(), image_->block_size(), buf_, zero_piece));
      return zero ? Verdict::Release : Verdict::Keep;
    }
    // One sequential read of the whole slot (bitmap and data): every present sector is compared.
    buf_.resize(image_->block_stride());
    VHDKIT_TRY(image_->file().read_at(slot.offset, buf_));
    std::span<const std::byte> bitmap = std::span(buf_).first(image_->bitmap_size());
    std::span<const std::byte> data = std::span(buf_).subspan(image_->bitmap_size());
    return classify_differencing(slot.block, bitmap, data);
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
      auto read = [&](uint64_t at, std::span<std::byte> b) { return image_->file().read_at(data + (at - start), b); };
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

Status check_compactable(disk::VirtualDisk& disk) {
  auto* image = dynamic_cast<Image*>(&disk);
  if (!image) return fail(ReturnCode::InvalidParameter, disk.path(), "not opened as a VHD");
  if (image->type() == disk::DiskType::Fixed) {
    return fail(ReturnCode::NotSupported, disk.path(),
                "a fixed VHD cannot be compacted: it has no block table, every virtual byte has its own place "
                "in the file, so there are no blocks to release or move (Retrim, which will punch holes in the "
                "host file instead, will handle fixed disks later)");
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

Result<std::unique_ptr<compact::CompactableImage>> make_compactable(std::unique_ptr<disk::VirtualDisk> disk) {
  VHDKIT_TRY(check_compactable(*disk));
  std::unique_ptr<Image> image(static_cast<Image*>(disk.release()));
  return std::unique_ptr<compact::CompactableImage>(std::make_unique<VhdCompaction>(std::move(image)));
}

}  // namespace vhdkit::vhd
