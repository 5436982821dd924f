// SPDX-License-Identifier: Apache-2.0
// libntfs-3g reads its volume through a struct ntfs_device whose operations are ours: they read a window
// (one partition) of a disk::VirtualDisk and refuse every write with EROFS. Each NtfsWindow owns its
// ntfs_device (its d_private points back at the window), so windows on different threads share nothing.
#pragma once

#include <cstdint>
#include <optional>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "fs/libntfs3g.h"

namespace vhdkit::fs::detail {

class NtfsWindow {
 public:
  NtfsWindow(disk::VirtualDisk& disk, uint64_t offset, uint64_t size);
  ~NtfsWindow();
  NtfsWindow(const NtfsWindow&) = delete;
  NtfsWindow& operator=(const NtfsWindow&) = delete;

  // The device to pass to ntfs_device_mount (nullptr when out of memory). After a successful mount
  // ntfs_umount frees it: call released() then.
  struct ntfs_device* device() {
    return dev_;
  }
  void released() { dev_ = nullptr; }

  // The first read error of the disk itself (not a read past the window): the map then fails instead of
  // keeping the volume whole, since the disk could not be read.
  const std::optional<Error>& disk_error() const { return disk_error_; }
  // How many times libntfs-3g tried to write (always refused; tests prove it stays 0).
  uint64_t write_attempts() const { return write_attempts_; }

  // Used by the device operations.
  disk::VirtualDisk& disk() { return disk_; }
  uint64_t offset() const { return offset_; }
  uint64_t size() const { return size_; }
  int64_t position = 0;  // for seek + read
  void set_disk_error(Error e) {
    if (!disk_error_) disk_error_ = std::move(e);
  }
  void count_write() { ++write_attempts_; }

 private:
  disk::VirtualDisk& disk_;
  uint64_t offset_, size_;
  struct ntfs_device* dev_ = nullptr;
  std::optional<Error> disk_error_;
  uint64_t write_attempts_ = 0;
};

// Process-wide count of write attempts by libntfs-3g on any window (for tests: must stay 0).
uint64_t ntfs_write_attempts_total();

}  // namespace vhdkit::fs::detail
