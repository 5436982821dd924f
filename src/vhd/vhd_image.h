// SPDX-License-Identifier: Apache-2.0
// vhd::Image: an open VHD (fixed, dynamic or differencing) as a disk::VirtualDisk, plus the structure
// accessors and the small durable write steps that compaction (vhd_compaction.cpp) builds on.
//
// Opening validates everything (vhd_metadata.h) and follows the parent chain; it never writes. Writes
// keep this order so that a power cut at any point leaves a valid image with the old or the new content:
//   new block: footer at the new end -> zeroed bitmap over the old footer -> flush -> BAT entry;
//   data:      data sectors -> bitmap bits (a sector is never marked present before its data is written).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "disk/parent_chain.h"
#include "disk/virtual_disk.h"
#include "io/file.h"
#include "vhd/vhd_format.h"
#include "vhd/vhd_metadata.h"

namespace vhdkit::vhd {

class Image final : public disk::VirtualDisk {
 public:
  // Opens an already-open file as a VHD. Parents are opened read-only through env, following
  // options.parents. Errors name the file and the structure.
  static Result<std::unique_ptr<Image>> open(io::Env& env, std::unique_ptr<io::File> file,
                                             const disk::OpenOptions& options);

  // ---- disk::VirtualDisk
  const std::string& path() const override { return file_->path(); }
  disk::DiskInfo info() const override;
  uint64_t virtual_size() const override { return meta_.virtual_size; }
  Status read(uint64_t offset, std::span<std::byte> buf) override;
  Status write(uint64_t offset, std::span<const std::byte> buf) override;
  Status flush() override { return file_->flush(); }
  // qemu-img map's view: dynamic disks by whole blocks (as qemu's vpc driver reports them); differencing
  // disks by sector bitmap, with the parent's extents at depth + 1 where the child has no sectors.
  Result<std::vector<disk::MapExtent>> map() override;
  std::vector<std::string> check() override;
  VirtualDisk* parent() override { return parent_.get(); }
  io::File& file() override { return *file_; }

  // ---- structures (read-only views, always in step with what is on disk)
  disk::DiskType type() const;
  const Footer& footer() const { return meta_.footer; }
  // nullptr for a fixed disk.
  const DynamicHeader* dynamic_header() const { return meta_.header ? &*meta_.header : nullptr; }
  const Metadata& metadata() const { return meta_; }
  // Image* of the parent (a VHD's parent is always a VHD), nullptr when none or not found.
  Image* parent_image() { return parent_.get(); }
  // Why the parent is absent when ParentPolicy::Optional let a differencing disk open without it.
  const std::optional<std::string>& parent_problem() const { return parent_problem_; }

  // Block geometry (dynamic and differencing disks; 0 for fixed).
  uint32_t block_size() const { return meta_.header ? meta_.header->block_size : 0; }
  uint64_t bitmap_size() const { return meta_.bitmap_size; }              // bytes before each block's data
  uint64_t block_count() const { return meta_.block_count; }              // blocks the virtual size spans
  uint64_t block_stride() const { return bitmap_size() + block_size(); }  // file bytes per block
  // BAT entries as stored (sector number of the block's bitmap, or kUnallocated), all Max Table Entries.
  const std::vector<uint32_t>& bat() const { return meta_.bat; }
  bool is_allocated(uint64_t block) const { return block < meta_.bat.size() && meta_.bat[block] != kUnallocated; }
  // File offsets of an allocated block's bitmap and data.
  uint64_t bitmap_offset(uint64_t block) const { return uint64_t{meta_.bat[block]} * kSectorSize; }
  uint64_t data_offset(uint64_t block) const { return bitmap_offset(block) + bitmap_size(); }
  // Where the footer at the end of the file starts (the file's size minus 512).
  uint64_t footer_offset() const { return meta_.footer_offset; }
  // The first file offset after all metadata (header, BAT, locators): where blocks may live.
  uint64_t data_area_start() const;
  uint64_t blocks_allocated() const;

  // ---- durable steps (each writes one structure; the caller decides when to flush)
  // Reads a block's sector bitmap (bitmap_size() bytes; bit 7 of byte 0 is the block's first sector).
  Result<Bytes> read_bitmap(uint64_t block);
  Status write_bitmap(uint64_t block, std::span<const std::byte> bitmap);
  // Points BAT entry `block` at `sector` (or kUnallocated) by rewriting the 512-byte BAT sector holding it.
  Status write_bat_entry(uint64_t block, uint32_t sector);
  // Writes the footer at `offset` (the new end of the data) and makes it the footer this image knows;
  // the caller truncates the file to offset + 512 afterwards when it shrinks.
  Status write_footer_at(uint64_t offset);
  // Gives an unallocated block storage at the end of the file with an all-zero bitmap (so it reads as
  // before) and flushes before pointing the BAT at it. Returns the block's bitmap offset.
  Result<uint64_t> allocate_block(uint64_t block);

 private:
  Image(std::unique_ptr<io::File> file, io::Access access, Metadata meta)
      : file_(std::move(file)), access_(access), meta_(std::move(meta)) {}

  // The disks already open below this one in the chain (the one resolver's depth and loop checks).
  using Chain = disk::ParentChain;
  static Result<std::unique_ptr<Image>> open_in_chain(io::Env& env, std::unique_ptr<io::File> file,
                                                      const disk::OpenOptions& options, Chain& chain);
  Status open_parent(io::Env& env, const disk::OpenOptions& options, Chain& chain);

  Status check_range(uint64_t offset, uint64_t length) const;
  Status check_writable() const;
  Result<const Bytes*> cached_bitmap(uint64_t block);
  Status read_from_parent(uint64_t offset, std::span<std::byte> buf);
  Status read_in_block(uint64_t block, uint64_t in_block, std::span<std::byte> buf);
  Status write_sectors(uint64_t offset, std::span<const std::byte> buf);  // sector-aligned
  Status write_in_block(uint64_t block, uint64_t in_block, std::span<const std::byte> buf);
  Status map_range(uint64_t start, uint64_t length, int depth, std::vector<disk::MapExtent>& out);

  std::unique_ptr<io::File> file_;
  io::Access access_;
  Metadata meta_;
  std::unique_ptr<Image> parent_;
  std::string parent_path_;  // as resolved (or as recorded when not found)
  std::optional<std::string> parent_problem_;
  Problems open_problems_;  // warnings found while opening (errors would have failed the open)
  uint64_t bitmap_cache_block_ = ~uint64_t{0};
  Bytes bitmap_cache_;
};

// Sector-bitmap helpers: bit for sector s is bit (7 - s % 8) of byte s / 8.
inline bool sector_present(std::span<const std::byte> bitmap, uint64_t sector) {
  return (static_cast<uint8_t>(bitmap[sector / 8]) >> (7 - sector % 8)) & 1;
}
void set_sectors_present(std::span<std::byte> bitmap, uint64_t first, uint64_t count);

// The entry point open_image() dispatches to.
Result<std::unique_ptr<disk::VirtualDisk>> open_vhd(io::Env& env, std::unique_ptr<io::File> file,
                                                    const disk::OpenOptions& options);

}  // namespace vhdkit::vhd
