// SPDX-License-Identifier: Apache-2.0
// The way back from Retrim: gives every hole of an image file storage again (io::File::allocate, fallocate
// without PUNCH_HOLE; where the host cannot, zeros are written), so that Windows, which refuses sparse image
// files ("must not be sparse": attach, Optimize-VHD, resize), accepts it. What the file reads never changes:
// a hole reads zeros and is filled with zeros, so any power cut leaves the same content.
#pragma once

#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/file.h"

namespace vhdkit::compact {

struct UnsparseReport {
  std::string path;
  uint64_t file_size = 0;
  uint64_t holes = 0;       // ranges filled
  uint64_t hole_bytes = 0;  // bytes they held
  uint64_t allocated_bytes_before = 0;
  uint64_t allocated_bytes_after = 0;
};

// Opens the file read-write under the image's Exclusive lock (D9), fills its holes and flushes.
Result<UnsparseReport> unsparse_image(io::Env& env, const std::string& path);

}  // namespace vhdkit::compact
