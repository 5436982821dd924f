// SPDX-License-Identifier: Apache-2.0
// What an open VHD says about itself: info, map (qemu-img map's shape) and check.
#include <fmt/format.h>

#include <ctime>

#include "vhd/parent_locator.h"
#include "vhd/vhd_image.h"

namespace vhdkit::vhd {

static std::string vhd_time(uint32_t stamp) {
  std::time_t t = static_cast<std::time_t>(kVhdEpoch + stamp);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

disk::DiskInfo Image::info() const {
  const Footer& f = meta_.footer;
  disk::DiskInfo i;
  i.format = disk::Format::Vhd;
  i.type = type();
  i.virtual_size = meta_.virtual_size;
  i.block_size = block_size();
  i.block_count = meta_.block_count;
  i.blocks_allocated = blocks_allocated();
  i.file_size = meta_.file_size;
  i.creator = fmt::format("{} {}.{} ({})", chars_text(f.creator_app), f.creator_version >> 16,
                          f.creator_version & 0xFFFF, chars_text(f.creator_host_os));
  i.disk_id = f.unique_id.to_string_be();
  auto& d = i.details;
  d.emplace_back("geometry", fmt::format("{}/{}/{} (CHS, {} bytes)", f.geometry.cylinders, f.geometry.heads,
                                         f.geometry.sectors_per_track, f.geometry.sectors() * kSectorSize));
  d.emplace_back("current size", fmt::format("{}", f.current_size));
  d.emplace_back("original size", fmt::format("{}", f.original_size));
  d.emplace_back("size from", size_source(f) == SizeSource::CurrentSize ? "current size" : "CHS geometry");
  d.emplace_back("timestamp", vhd_time(f.timestamp));
  if (f.saved_state) d.emplace_back("saved state", "yes");
  if (meta_.header) {
    d.emplace_back("bat entries", fmt::format("{}", meta_.header->max_table_entries));
    d.emplace_back("bitmap size", fmt::format("{}", meta_.bitmap_size));
  }
  if (meta_.type == DiskTypeCode::Differencing) {
    const DynamicHeader& h = *meta_.header;
    i.parent_path = parent_path_.empty() ? utf16_to_utf8(h.parent_unicode_name) : parent_path_;
    d.emplace_back("parent unique id", h.parent_unique_id.to_string_be());
    d.emplace_back("parent timestamp", vhd_time(h.parent_timestamp));
    d.emplace_back("parent name", utf16_to_utf8(h.parent_unicode_name));
    for (const LocatorText& l : meta_.locators)
      d.emplace_back(fmt::format("parent locator {}", l.index),
                     fmt::format("{} {}", fourcc_text(l.platform_code), l.text));
    if (parent_problem_) d.emplace_back("parent problem", *parent_problem_);
  }
  return i;
}

// Appends an extent, merging it into the previous one when nothing but its position differs (and the
// host offsets continue), as qemu-img map does.
static void append(std::vector<disk::MapExtent>& out, disk::MapExtent e) {
  if (e.length == 0) return;
  if (!out.empty()) {
    disk::MapExtent& last = out.back();
    bool same = last.depth == e.depth && last.present == e.present && last.zero == e.zero && last.data == e.data &&
                last.offset.has_value() == e.offset.has_value() &&
                (!e.offset || *last.offset + last.length == *e.offset) && last.start + last.length == e.start;
    if (same) {
      last.length += e.length;
      return;
    }
  }
  out.push_back(e);
}

Status Image::map_range(uint64_t start, uint64_t length, int depth, std::vector<disk::MapExtent>& out) {
  auto data = [&](uint64_t s, uint64_t n, uint64_t host) { append(out, {s, n, depth, true, false, true, host}); };
  auto from_parent = [&](uint64_t s, uint64_t n) -> Status {
    if (!parent_) {
      append(out, {s, n, depth + 1, false, false, false, std::nullopt});
      return ok();
    }
    uint64_t psize = parent_->virtual_size();
    uint64_t inside = s >= psize ? 0 : std::min(n, psize - s);
    if (inside) VHDKIT_TRY(parent_->map_range(s, inside, depth + 1, out));
    if (inside < n) append(out, {s + inside, n - inside, depth + 1, true, true, false, std::nullopt});
    return ok();
  };
  if (meta_.type == DiskTypeCode::Fixed) {
    data(start, length, start);
    return ok();
  }
  uint64_t bs = block_size();
  uint64_t end = start + length;
  for (uint64_t pos = start; pos < end;) {
    uint64_t block = pos / bs;
    uint64_t n = std::min(end, (block + 1) * bs) - pos;
    uint64_t in_block = pos - block * bs;
    if (!is_allocated(block)) {
      if (meta_.type == DiskTypeCode::Differencing)
        VHDKIT_TRY(from_parent(pos, n));
      else
        append(out, {pos, n, depth, true, true, false, std::nullopt});
    } else if (meta_.type == DiskTypeCode::Dynamic) {
      // qemu's vpc driver reports an allocated block as data whatever its bitmap says.
      data(pos, n, data_offset(block) + in_block);
    } else {
      VHDKIT_ASSIGN(const Bytes* bitmap, cached_bitmap(block));
      uint64_t s = in_block / kSectorSize, last = div_round_up(in_block + n, kSectorSize);
      while (s < last) {
        bool present = sector_present(*bitmap, s);
        uint64_t e = s + 1;
        while (e < last && sector_present(*bitmap, e) == present) ++e;
        uint64_t from = std::max(s * kSectorSize, in_block), to = std::min(e * kSectorSize, in_block + n);
        if (present)
          data(block * bs + from, to - from, data_offset(block) + from);
        else
          VHDKIT_TRY(from_parent(block * bs + from, to - from));
        s = e;
      }
    }
    pos += n;
  }
  return ok();
}

Result<std::vector<disk::MapExtent>> Image::map() {
  std::vector<disk::MapExtent> out;
  VHDKIT_TRY(map_range(0, meta_.virtual_size, 0, out));
  return out;
}

std::vector<std::string> Image::check() {
  std::vector<std::string> found;
  // Read everything again: the file may have changed since it was opened.
  Problems problems;
  auto again = read_metadata(*file_, problems);
  if (!again && problems.errors.empty()) found.push_back(again.error().message());
  for (auto& e : problems.errors) found.push_back(std::move(e));
  for (auto& w : problems.warnings) found.push_back(std::move(w));
  if (meta_.type != DiskTypeCode::Differencing) return found;
  if (parent_problem_) found.push_back(*parent_problem_);
  if (!parent_) return found;
  const DynamicHeader& h = *meta_.header;
  if (h.parent_timestamp != parent_->footer().timestamp)
    found.push_back(
        fmt::format("the dynamic header's Parent Time Stamp {} differs from the parent's footer "
                    "Time Stamp {} (the parent may have been modified)",
                    vhd_time(h.parent_timestamp), vhd_time(parent_->footer().timestamp)));
  if (parent_->virtual_size() != meta_.virtual_size)
    found.push_back(fmt::format("the parent {} is {} bytes but this differencing disk is {} bytes", parent_path_,
                                parent_->virtual_size(), meta_.virtual_size));
  for (const std::string& p : parent_->check()) found.push_back(fmt::format("parent {}: {}", parent_path_, p));
  return found;
}

}  // namespace vhdkit::vhd
