// SPDX-License-Identifier: Apache-2.0
// Creating VHD files: fixed, dynamic, and differencing children of an existing VHD.
#pragma once

#include <memory>
#include <string>

#include "disk/virtual_disk.h"
#include "vhd/vhd_image.h"

namespace vhdkit::vhd {

struct CreateParams {
  disk::DiskType type = disk::DiskType::Dynamic;
  uint64_t virtual_size = 0;  // bytes, a multiple of 512; ignored for differencing (the parent's size)
  uint32_t block_size = 0;    // 0: 2 MiB (for differencing: the parent's block size when it has one)
  std::string parent_path;    // differencing only
};

// Creates a new file at path (never overwriting one) and returns it open read-write. On failure no file
// is left behind.
Result<std::unique_ptr<Image>> create(io::Env& env, const std::string& path, const CreateParams& params);

// The footer our writer gives a disk of virtual_size bytes (exposed for tests). See the .cpp for why
// the geometry is the spec's CHS when it expresses the size exactly and the maximum geometry otherwise.
Footer new_footer(DiskTypeCode type, uint64_t virtual_size, uint64_t data_offset);

}  // namespace vhdkit::vhd
