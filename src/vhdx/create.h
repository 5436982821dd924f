// SPDX-License-Identifier: Apache-2.0
// Creating VHDX files: dynamic, fixed, and differencing (which qemu-img cannot make).
//
// Layout: header section (1 MiB), log (1 MiB by default) at 1 MiB, metadata region (1 MiB), BAT region
// (rounded up to 1 MiB), then payload blocks; everything 1 MiB aligned. Both headers are written valid
// (sequence numbers 0 and 1), both region tables identical, the log empty (LogGuid zero).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/error.h"
#include "disk/driver.h"
#include "io/file.h"
#include "vhdx/format.h"

namespace vhdkit::vhdx {

enum class Subformat { Dynamic, Fixed };

struct CreateOptions {
  uint64_t virtual_size = 0;             // ignored for differencing disks (the parent's size is used)
  uint32_t block_size = 32 * MiB;        // power of two, 1-256 MiB
  uint32_t logical_sector_size = 512;    // 512 or 4096; differencing disks take the parent's
  uint32_t physical_sector_size = 4096;  // 512 or 4096; differencing disks take the parent's
  uint32_t log_size = 1 * MiB;           // 1 MiB multiple
  Subformat subformat = Subformat::Dynamic;
  // Makes a differencing disk of this parent (a VHDX); the locator records relative_path (from the new
  // file's folder, Windows form) and absolute_win32_path (the parent's absolute host path).
  std::optional<std::string> parent_path;
};

// Creates a new file at path (refuses to overwrite one). Validates the options first: InvalidParameter
// names the bad one.
Status create(io::Env& env, const std::string& path, const CreateOptions& options);

// The VHDX driver's create (image::create_image() dispatches here): creates (block size 0 means 32 MiB; sector sizes
// 512/4096) and returns the new disk open read-write.
Result<std::unique_ptr<disk::VirtualDisk>> create_image(io::Env& env, const std::string& path,
                                                        const disk::CreateOptions& options);

}  // namespace vhdkit::vhdx
