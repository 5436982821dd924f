// SPDX-License-Identifier: Apache-2.0
// libext2fs reads through an io_manager: ours reads a window (one partition) of a disk::VirtualDisk and
// refuses every write. libext2fs opens a channel by name, so each window is registered under a unique name
// for as long as an ExtWindow object lives; a mutex-guarded registry makes concurrent maps of different
// disks on different threads safe (each window is then used by one thread only).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "fs/libext2fs.h"

namespace vhdkit::fs::detail {

class ExtWindow {
 public:
  ExtWindow(disk::VirtualDisk& disk, uint64_t offset, uint64_t size);
  ~ExtWindow();
  ExtWindow(const ExtWindow&) = delete;
  ExtWindow& operator=(const ExtWindow&) = delete;

  const char* name() const { return name_.c_str(); }  // what to pass to ext2fs_open2
  static io_manager manager();

  // The first read error of the disk itself (not a read outside the window): such a failure makes the map
  // fail instead of keeping the volume whole, since the whole disk could not be read.
  const std::optional<Error>& disk_error() const { return disk_error_; }

  // Used by the io_manager's callbacks.
  disk::VirtualDisk& disk() { return disk_; }
  uint64_t offset() const { return offset_; }
  uint64_t size() const { return size_; }
  void set_disk_error(Error e) {
    if (!disk_error_) disk_error_ = std::move(e);
  }

 private:
  disk::VirtualDisk& disk_;
  uint64_t offset_, size_;
  uint64_t token_;
  std::string name_;
  std::optional<Error> disk_error_;
};

}  // namespace vhdkit::fs::detail
