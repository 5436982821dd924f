// SPDX-License-Identifier: Apache-2.0
#include "vhd/vhd_image.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace vhdkit::vhd {
namespace {

// Calls fn(block, offset_in_block, done, length) for each piece of [offset, offset + length) that lies
// in one block, in order; stops at the first error.
template <class Fn>
Status for_each_block_piece(uint64_t offset, uint64_t length, uint64_t block_size, Fn fn) {
  for (uint64_t done = 0; done < length;) {
    uint64_t in_block = (offset + done) % block_size;
    uint64_t n = std::min(length - done, block_size - in_block);
    VHDKIT_TRY(fn((offset + done) / block_size, in_block, done, n));
    done += n;
  }
  return ok();
}

}  // namespace

void set_sectors_present(std::span<std::byte> bitmap, uint64_t first, uint64_t count) {
  for (uint64_t s = first; s < first + count; ++s) bitmap[s / 8] |= std::byte(uint8_t(0x80u >> (s % 8)));
}

Result<std::unique_ptr<disk::VirtualDisk>> open_vhd(io::Env& env, std::unique_ptr<io::File> file,
                                                    const disk::OpenOptions& options) {
  VHDKIT_ASSIGN(auto image, Image::open(env, std::move(file), options));
  return std::unique_ptr<disk::VirtualDisk>(std::move(image));
}

Result<std::unique_ptr<Image>> Image::open(io::Env& env, std::unique_ptr<io::File> file,
                                           const disk::OpenOptions& options) {
  // Every allocation sized from the file is bounded; should one still fail, the caller gets an error (exit 8),
  // never an abort.
  std::string path = file->path();
  try {
    Chain chain;
    VHDKIT_ASSIGN(auto image, open_in_chain(env, std::move(file), options, chain));
    if (options.access == io::Access::ReadWrite && !image->meta_.write_refusal.empty())
      return fail(ReturnCode::NotSupported, path, "cannot open for writing: " + image->meta_.write_refusal);
    return image;
  } catch (const std::bad_alloc&) {
    return fail(ReturnCode::OutOfMemory, path, "not enough memory to open the image");
  }
}

disk::DiskType Image::type() const {
  switch (meta_.type) {
    case DiskTypeCode::Dynamic: return disk::DiskType::Dynamic;
    case DiskTypeCode::Differencing: return disk::DiskType::Differencing;
    default: return disk::DiskType::Fixed;
  }
}

uint64_t Image::data_area_start() const {
  uint64_t end = 0;
  for (const Region& r : meta_.regions) end = std::max(end, r.end());
  return round_up(end, kSectorSize);
}

uint64_t Image::blocks_allocated() const {
  return static_cast<uint64_t>(
      std::count_if(meta_.bat.begin(), meta_.bat.end(), [](uint32_t e) { return e != kUnallocated; }));
}

Status Image::check_range(uint64_t offset, uint64_t length) const {
  if (offset > meta_.virtual_size || length > meta_.virtual_size - offset)
    return fail(ReturnCode::InvalidParameter, path(),
                fmt::format("range {}+{} lies past the end of the {}-byte disk", offset, length, meta_.virtual_size));
  return ok();
}

Status Image::check_writable() const {
  if (access_ != io::Access::ReadWrite) return fail(ReturnCode::InvalidState, path(), "the image is open read-only");
  if (!meta_.write_refusal.empty()) return fail(ReturnCode::NotSupported, path(), meta_.write_refusal);
  if (meta_.footer_offset % kSectorSize != 0)
    return fail(ReturnCode::NotSupported, path(), "writing to a VHD with a 511-byte footer is not supported");
  return ok();
}

// ---------------------------------------------------------------- reading

Result<const Bytes*> Image::cached_bitmap(uint64_t block) {
  if (bitmap_cache_block_ != block) {
    bitmap_cache_block_ = ~uint64_t{0};
    VHDKIT_ASSIGN(bitmap_cache_, read_bitmap(block));
    bitmap_cache_block_ = block;
  }
  return &bitmap_cache_;
}

Result<Bytes> Image::read_bitmap(uint64_t block) {
  Bytes bitmap(bitmap_size());
  VHDKIT_TRY(file_->read_at(bitmap_offset(block), bitmap));
  return bitmap;
}

Status Image::read_from_parent(uint64_t offset, std::span<std::byte> buf) {
  if (!parent_)
    return fail(ReturnCode::FileNotFound, path(),
                fmt::format("bytes {}+{} are stored in the parent disk, which is not available: {}", offset, buf.size(),
                            parent_problem_.value_or("no parent")));
  // A parent smaller than its child (not allowed by the spec, but seen) reads as zeros past its end.
  uint64_t psize = parent_->virtual_size();
  uint64_t n = offset >= psize ? 0 : std::min<uint64_t>(buf.size(), psize - offset);
  if (n) VHDKIT_TRY(parent_->read(offset, buf.first(n)));
  std::fill(buf.begin() + static_cast<ptrdiff_t>(n), buf.end(), std::byte{0});
  return ok();
}

Status Image::read_in_block(uint64_t block, uint64_t in_block, std::span<std::byte> buf) {
  uint64_t virt = block * block_size() + in_block;
  bool differencing = meta_.type == DiskTypeCode::Differencing;
  auto absent = [&](uint64_t v, std::span<std::byte> part) -> Status {
    if (differencing) return read_from_parent(v, part);
    std::fill(part.begin(), part.end(), std::byte{0});
    return ok();
  };
  if (!is_allocated(block)) return absent(virt, buf);
  VHDKIT_ASSIGN(const Bytes* bitmap, cached_bitmap(block));
  uint64_t first = in_block / kSectorSize;
  uint64_t last = div_round_up(in_block + buf.size(), kSectorSize);  // exclusive
  // Runs of sectors with the same presence; one run (the common case) is one read.
  uint64_t s = first;
  while (s < last) {
    bool present = sector_present(*bitmap, s);
    uint64_t e = s + 1;
    while (e < last && sector_present(*bitmap, e) == present) ++e;
    uint64_t from = std::max(s * kSectorSize, in_block);
    uint64_t to = std::min(e * kSectorSize, in_block + buf.size());
    auto part = buf.subspan(from - in_block, to - from);
    if (present)
      VHDKIT_TRY(file_->read_at(data_offset(block) + from, part));
    else
      VHDKIT_TRY(absent(block * block_size() + from, part));
    s = e;
  }
  return ok();
}

Status Image::read(uint64_t offset, std::span<std::byte> buf) {
  VHDKIT_TRY(check_range(offset, buf.size()));
  if (meta_.type == DiskTypeCode::Fixed) return file_->read_at(offset, buf);
  return for_each_block_piece(offset, buf.size(), block_size(),
                              [&](uint64_t block, uint64_t in_block, uint64_t done, uint64_t n) {
                                return read_in_block(block, in_block, buf.subspan(done, n));
                              });
}

// ---------------------------------------------------------------- writing

Status Image::write_bitmap(uint64_t block, std::span<const std::byte> bitmap) {
  VHDKIT_TRY(check_writable());
  if (!is_allocated(block) || bitmap.size() != bitmap_size())
    return fail(ReturnCode::InvalidParameter, path(), fmt::format("no bitmap to write for block {}", block));
  bitmap_cache_block_ = ~uint64_t{0};
  return file_->write_at(bitmap_offset(block), bitmap);
}

Status Image::write_bat_entry(uint64_t block, uint32_t sector) {
  VHDKIT_TRY(check_writable());
  if (!meta_.header || block >= meta_.bat.size())
    return fail(ReturnCode::InvalidParameter, path(), fmt::format("there is no BAT entry {}", block));
  meta_.bat[block] = sector;
  bitmap_cache_block_ = ~uint64_t{0};
  // Rewrite the whole 512-byte piece of the BAT holding the entry: one sector, written at once.
  constexpr uint64_t kPerSector = kSectorSize / 4;
  uint64_t first = block / kPerSector * kPerSector;
  uint64_t count = std::min<uint64_t>(kPerSector, meta_.bat.size() - first);
  Bytes raw(count * 4);
  for (uint64_t i = 0; i < count; ++i) store_be<uint32_t>(raw.data() + 4 * i, meta_.bat[first + i]);
  return file_->write_at(meta_.header->table_offset + first * 4, raw);
}

Status Image::write_footer_at(uint64_t offset) {
  VHDKIT_TRY(check_writable());
  VHDKIT_TRY(file_->write_at(offset, meta_.footer_raw));
  meta_.footer_offset = offset;
  return ok();
}

Result<uint64_t> Image::allocate_block(uint64_t block) {
  VHDKIT_TRY(check_writable());
  if (!meta_.header || block >= meta_.block_count)
    return fail(ReturnCode::InvalidParameter, path(), fmt::format("block {} is outside the disk", block));
  if (is_allocated(block))
    return fail(ReturnCode::InvalidState, path(), fmt::format("block {} is already allocated", block));
  uint64_t start = meta_.footer_offset;
  if (start / kSectorSize > uint64_t{kUnallocated} - 1)
    return fail(ReturnCode::NotSupported, path(), "the file is too large for another VHD block");
  // Footer first: until the BAT points at the new block, the file stays a valid image either way.
  VHDKIT_TRY(write_footer_at(start + block_stride()));
  Bytes zero_bitmap(bitmap_size());
  VHDKIT_TRY(file_->write_at(start, zero_bitmap));
  VHDKIT_TRY(file_->flush());
  VHDKIT_TRY(write_bat_entry(block, static_cast<uint32_t>(start / kSectorSize)));
  return start;
}

Status Image::write_in_block(uint64_t block, uint64_t in_block, std::span<const std::byte> buf) {
  if (!is_allocated(block)) VHDKIT_TRY(allocate_block(block));
  VHDKIT_TRY(file_->write_at(data_offset(block) + in_block, buf));
  VHDKIT_ASSIGN(const Bytes* cached, cached_bitmap(block));
  Bytes bitmap = *cached;
  set_sectors_present(bitmap, in_block / kSectorSize, buf.size() / kSectorSize);
  if (bitmap != *cached) VHDKIT_TRY(write_bitmap(block, bitmap));
  return ok();
}

Status Image::write_sectors(uint64_t offset, std::span<const std::byte> buf) {
  return for_each_block_piece(offset, buf.size(), block_size(),
                              [&](uint64_t block, uint64_t in_block, uint64_t done, uint64_t n) {
                                return write_in_block(block, in_block, buf.subspan(done, n));
                              });
}

Status Image::write(uint64_t offset, std::span<const std::byte> buf) {
  VHDKIT_TRY(check_writable());
  VHDKIT_TRY(check_range(offset, buf.size()));
  if (meta_.type == DiskTypeCode::Fixed) return file_->write_at(offset, buf);
  // Partial sectors at either end become whole sectors holding the current content around the new bytes
  // (from the parent where this disk has none), since presence is tracked per sector.
  while (!buf.empty()) {
    uint64_t head = offset % kSectorSize;
    if (head == 0 && buf.size() >= kSectorSize) {
      size_t whole = buf.size() / kSectorSize * kSectorSize;
      VHDKIT_TRY(write_sectors(offset, buf.first(whole)));
      offset += whole;
      buf = buf.subspan(whole);
      continue;
    }
    Bytes sector(kSectorSize);
    uint64_t sector_start = offset - head;
    VHDKIT_TRY(read(sector_start, sector));
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), kSectorSize - head));
    std::memcpy(sector.data() + head, buf.data(), n);
    VHDKIT_TRY(write_sectors(sector_start, sector));
    offset += n;
    buf = buf.subspan(n);
  }
  return ok();
}

}  // namespace vhdkit::vhd
