// SPDX-License-Identifier: Apache-2.0
#include "fs/lvm_disk.h"

#include <algorithm>

namespace vhdkit::fs::detail {

LvDisk::LvDisk(disk::VirtualDisk& base, std::vector<LvRun> runs) : base_(base), runs_(std::move(runs)) {
  if (!runs_.empty()) size_ = runs_.back().lv_offset + runs_.back().length;
}

disk::DiskInfo LvDisk::info() const {
  disk::DiskInfo i = base_.info();
  i.virtual_size = size_;
  i.block_size = 0;
  i.block_count = 0;
  i.blocks_allocated = 0;
  i.parent_path.reset();
  i.details.clear();
  return i;
}

Status LvDisk::read(uint64_t offset, std::span<std::byte> buf) {
  if (offset > size_ || buf.size() > size_ - offset)
    return fail(ReturnCode::InvalidParameter, path(), "a read past the end of a logical volume");
  // The first run that ends after `offset`.
  auto it = std::upper_bound(runs_.begin(), runs_.end(), offset,
                             [](uint64_t o, const LvRun& r) { return o < r.lv_offset + r.length; });
  size_t done = 0;
  while (done < buf.size() && it != runs_.end()) {
    const uint64_t at = offset + done, in_run = at - it->lv_offset;
    const uint64_t n = std::min<uint64_t>(buf.size() - done, it->length - in_run);
    VHDKIT_TRY(base_.read(it->disk_offset + in_run, buf.subspan(done, n)));
    done += n;
    ++it;
  }
  return {};
}

Status LvDisk::write(uint64_t, std::span<const std::byte>) {
  return fail(ReturnCode::InvalidState, path(), "a logical volume is read here, never written");
}

Result<std::vector<disk::MapExtent>> LvDisk::map() {
  disk::MapExtent e;
  e.length = size_;
  e.present = e.data = true;
  return std::vector<disk::MapExtent>{e};
}

void LvDisk::to_disk(ByteRange r, std::vector<ByteRange>& out) const {
  if (r.offset >= size_) return;
  const uint64_t end = r.offset + std::min(r.length, size_ - r.offset);
  auto it = std::upper_bound(runs_.begin(), runs_.end(), r.offset,
                             [](uint64_t o, const LvRun& x) { return o < x.lv_offset + x.length; });
  for (uint64_t at = r.offset; at < end && it != runs_.end(); ++it) {
    const uint64_t in_run = at - it->lv_offset, n = std::min(end - at, it->length - in_run);
    out.push_back({it->disk_offset + in_run, n});
    at += n;
  }
}

}  // namespace vhdkit::fs::detail
