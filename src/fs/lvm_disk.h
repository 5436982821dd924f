// SPDX-License-Identifier: Apache-2.0
// A linear logical volume as a disk of its own: its bytes are runs of the physical volume's extents on the
// same underlying disk. The readers of the table read it like any disk; what they call used is mapped back
// to the underlying disk's bytes through the same runs. Read-only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "disk/virtual_disk.h"
#include "fs/usage_map.h"

namespace vhdkit::fs::detail {

struct LvRun {
  uint64_t lv_offset = 0;    // bytes of the LV
  uint64_t disk_offset = 0;  // bytes of the underlying disk
  uint64_t length = 0;
};

class LvDisk final : public disk::VirtualDisk {
 public:
  // `runs`: sorted by lv_offset, contiguous from 0; each inside the base disk (the caller checked).
  LvDisk(disk::VirtualDisk& base, std::vector<LvRun> runs);

  const std::string& path() const override { return base_.path(); }
  disk::DiskInfo info() const override;
  uint64_t virtual_size() const override { return size_; }
  Status read(uint64_t offset, std::span<std::byte> buf) override;
  Status write(uint64_t offset, std::span<const std::byte> buf) override;
  Status flush() override { return {}; }
  Result<std::vector<disk::MapExtent>> map() override;
  std::vector<std::string> check() override { return {}; }
  disk::VirtualDisk* parent() override { return nullptr; }
  io::File& file() override { return base_.file(); }

  // Appends to `out` the underlying disk's bytes that hold [r.offset, r.end()) of the LV.
  void to_disk(ByteRange r, std::vector<ByteRange>& out) const;

 private:
  disk::VirtualDisk& base_;
  std::vector<LvRun> runs_;
  uint64_t size_ = 0;
};

}  // namespace vhdkit::fs::detail
