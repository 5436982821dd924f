// SPDX-License-Identifier: Apache-2.0
// GetVirtualHardDiskState and ValidateVirtualHardDisk: the two read-only methods vhdkitd offers beside
// CompactVirtualHardDisk. Both run at once (no job) and never write.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "compact/compact.h"
#include "core/error.h"
#include "io/file.h"
#include "service/engine.h"

namespace vhdkit::service {

// Msvm_VirtualHardDiskState's fields, filled from a dry run of the compaction.
struct VirtualHardDiskState {
  uint64_t file_size = 0;
  bool in_use = false;  // another program, or a job of this service, has the image open for writing
  // The rest is known only when the image is not in use:
  std::optional<uint64_t> min_internal_size;  // the file size compaction would reach (dry run)
  std::optional<uint32_t> physical_sector_size;
  std::optional<uint32_t> alignment;                 // 1: every data block starts on a 4 KiB boundary
  std::optional<uint32_t> fragmentation_percentage;  // allocated blocks compaction would release or move
  // The dry run itself: the volumes its file-system pass found, what Full, Quick and Prezeroed would release,
  // the free bytes no mode can release, and why nothing would be gained.
  std::optional<compact::Report> report;
};

struct Validation {
  bool valid = false;
  std::vector<std::string> problems;  // sentences naming the structure, empty when valid
};

// `access` opens the image and its parents (the daemon's CallerEnv: as the caller), once. An image that
// another program or a job of this service holds for writing is reported in use (its lock says so).
// How a read-only look at an image (a dry run, the state) holds it: Shared for a caller who may write it,
// NoWriter for one who may not, so that looping such calls cannot keep the image's owner (or qemu) from
// writing it.
compact::ReaderLock reader_lock_for(io::Env& access, const std::string& path);

Result<VirtualHardDiskState> get_virtual_hard_disk_state(io::Env& access, Engine& engine, const std::string& path);
Result<Validation> validate_virtual_hard_disk(io::Env& access, const std::string& path);

}  // namespace vhdkit::service
