// SPDX-License-Identifier: Apache-2.0
// Images for the service and CLI tests, beyond tests/compact/images.h: one big enough that its
// compaction is still running when the test acts on it, without using much disk.
#pragma once

#include <string>

#include "images.h"

namespace vhdkit::testing {

// A dynamic VHD of `blocks` 2 MiB blocks, the first random data and the rest zeros, every block allocated
// in the VHD but the zeros left as holes in the host file: compaction scans all of it (taking a second or
// more for 256 blocks) while the file uses a few MiB of disk.
inline std::string make_slow_vhd(const TempDir& dir, const std::string& name, size_t blocks) {
  std::string vhd = make_dynamic_vhd(dir, name, "D" + std::string(blocks - 1, 'Z'));
  run_ok("fallocate --dig-holes " + q(vhd));
  return vhd;
}

}  // namespace vhdkit::testing
