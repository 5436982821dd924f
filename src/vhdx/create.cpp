// SPDX-License-Identifier: Apache-2.0
#include "vhdx/create.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "vhdx/bat.h"
#include "vhdx/image.h"
#include "vhdx/metadata.h"
#include "vhdx/parent.h"
#include "vhdx/vhdx_disk.h"

namespace vhdkit::vhdx {
namespace {

Status validate(const std::string& path, const CreateOptions& o) {
  auto bad = [&](std::string why) { return fail(ReturnCode::InvalidParameter, path, why); };
  if (!is_power_of_two(o.block_size) || o.block_size < kMinBlockSize || o.block_size > kMaxBlockSize)
    return bad(fmt::format("block size {} is not a power of two from 1 MiB to 256 MiB", o.block_size));
  for (uint32_t s : {o.logical_sector_size, o.physical_sector_size})
    if (s != 512 && s != 4096) return bad(fmt::format("sector size {} is not 512 or 4096", s));
  if (o.virtual_size == 0 || o.virtual_size > kMaxVirtualSize || o.virtual_size % o.logical_sector_size != 0)
    return bad(fmt::format("virtual size {} is not a multiple of the {}-byte sector from one sector to 64 TiB",
                           o.virtual_size, o.logical_sector_size));
  if (o.log_size == 0 || o.log_size % kAlignment != 0)
    return bad(fmt::format("log size {} is not a positive multiple of 1 MiB", o.log_size));
  return ok();
}

}  // namespace

Status create(io::Env& env, const std::string& path, const CreateOptions& options) {
  CreateOptions o = options;
  Metadata m;
  m.page83 = Guid::random();
  if (o.parent_path) {
    VHDKIT_ASSIGN(std::string parent_absolute, env.absolute(*o.parent_path));
    VHDKIT_ASSIGN(std::string child_absolute, env.absolute(path));
    VHDKIT_ASSIGN(auto pfile, env.open(*o.parent_path, io::Access::ReadOnly));
    auto parent = Image::open(std::move(pfile), io::Access::ReadOnly);
    if (!parent) return fail(parent.error().with_context("the parent of the new differencing disk"));
    const Metadata& pm = (*parent)->metadata();
    o.virtual_size = pm.virtual_size;
    o.logical_sector_size = pm.logical_sector_size;
    o.physical_sector_size = pm.physical_sector_size;
    o.subformat = Subformat::Dynamic;
    m.has_parent = true;
    ParentLocator pl;
    pl.locator_type = vhdx_parent_locator_type();
    pl.entries = {{"parent_linkage", "{" + (*parent)->header().data_write_guid.to_string_ms() + "}"},
                  {"relative_path", relative_parent_path(child_absolute, parent_absolute)},
                  {"absolute_win32_path", parent_absolute}};
    m.parent_locator = pl;
  }
  VHDKIT_TRY(validate(path, o));
  m.block_size = o.block_size;
  m.leave_block_allocated = o.subformat == Subformat::Fixed;
  m.virtual_size = o.virtual_size;
  m.logical_sector_size = o.logical_sector_size;
  m.physical_sector_size = o.physical_sector_size;
  BatGeometry g = BatGeometry::make(m.virtual_size, m.block_size, m.logical_sector_size, m.has_parent);

  const uint64_t log_offset = kHeaderSectionSize;
  const uint64_t metadata_offset = log_offset + o.log_size;
  const uint64_t metadata_length = kAlignment;
  const uint64_t bat_offset = metadata_offset + metadata_length;
  const uint64_t bat_length = round_up(g.total_entries * 8, kAlignment);
  const uint64_t payload_offset = bat_offset + bat_length;

  const bool fixed = o.subformat == Subformat::Fixed;
  const uint64_t file_size = payload_offset + (fixed ? g.payload_blocks * m.block_size : 0);

  VHDKIT_ASSIGN(auto file, env.open(path, io::Access::ReadWrite, io::Creation::CreateNew));
  FileIdentifier id;
  std::string creator = "vhdkit";
  id.creator.assign(creator.begin(), creator.end());
  VHDKIT_TRY(file->write_at(kFileIdentifierOffset, serialize_file_identifier(id)));
  Header h;
  h.file_write_guid = Guid::random();
  h.data_write_guid = Guid::random();
  h.log_length = o.log_size;
  h.log_offset = log_offset;
  for (int i = 0; i < 2; ++i) {
    h.sequence_number = static_cast<uint64_t>(i);
    VHDKIT_TRY(file->write_at(kHeaderOffsets[i], serialize_header(h)));
  }
  RegionTable rt;
  rt.entries = {{bat_region_guid(), bat_offset, static_cast<uint32_t>(bat_length), true},
                {metadata_region_guid(), metadata_offset, static_cast<uint32_t>(metadata_length), true}};
  Bytes rt_bytes = serialize_region_table(rt);
  for (uint64_t at : kRegionTableOffsets) VHDKIT_TRY(file->write_at(at, rt_bytes));
  VHDKIT_TRY(file->write_at(metadata_offset, serialize_metadata(m, static_cast<uint32_t>(metadata_length))));
  // The BAT, 1 MiB at a time: a fixed disk's blocks follow the BAT in block order; pieces of NOT_PRESENT entries
  // are left as holes (the truncate below reads them as zeros), so that a 64 TiB dynamic disk's 512 MiB table
  // costs neither memory nor disk space.
  Bytes piece(std::min<uint64_t>(g.total_entries * 8, kAlignment));
  for (uint64_t first = 0; first < g.total_entries;) {
    uint64_t n = std::min<uint64_t>(piece.size() / 8, g.total_entries - first);
    bool any = false;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t index = first + i, entry = 0;
      if (fixed && !g.is_bitmap_index(index) && g.block_of_index(index) < g.payload_blocks)
        entry = make_bat_entry(static_cast<uint8_t>(PayloadState::FullyPresent),
                               payload_offset + g.block_of_index(index) * m.block_size);
      store_le<uint64_t>(piece.data() + i * 8, entry);
      any = any || entry != 0;
    }
    if (any) VHDKIT_TRY(file->write_at(bat_offset + first * 8, std::span(piece).first(n * 8)));
    first += n;
  }
  VHDKIT_TRY(file->truncate(file_size));
  return file->flush();
}

Result<std::unique_ptr<disk::VirtualDisk>> create_image(io::Env& env, const std::string& path,
                                                        const disk::CreateOptions& options) {
  CreateOptions o;
  o.virtual_size = options.virtual_size;
  if (options.block_size) o.block_size = options.block_size;
  o.subformat = options.type == disk::DiskType::Fixed ? Subformat::Fixed : Subformat::Dynamic;
  if (options.type == disk::DiskType::Differencing) o.parent_path = options.parent_path;
  VHDKIT_TRY(create(env, path, o));
  VHDKIT_ASSIGN(auto file, env.open(path, io::Access::ReadWrite));
  disk::OpenOptions open_options;
  open_options.access = io::Access::ReadWrite;
  return open_disk(env, std::move(file), open_options);
}

}  // namespace vhdkit::vhdx
