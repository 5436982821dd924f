// SPDX-License-Identifier: Apache-2.0
// Finding the images of a batch: walk the folders, recognise VHD/VHDX by their content (the dispatcher's
// probe), keep one path per physical file, and learn each image's parent chain so that a child and its
// parent are never compacted at the same time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/batch.h"
#include "disk/virtual_disk.h"
#include "io/file.h"

namespace vhdkit::cli {

struct BatchImage {
  std::string path;
  std::string format;  // "vhd", "vhdx", or "unknown" when the probe could not tell (named like an image)
  io::FileIdentity identity;
  std::vector<io::FileIdentity> chain;  // the image and the parents it names (as far as they open)
  uint64_t size = 0;                    // the file's size when found
};

// A path that was found but is not compacted, and why (a symbolic link out of the tree, a duplicate).
struct BatchSkip {
  std::string path;
  std::string reason;
};

struct BatchScan {
  std::vector<BatchImage> images;
  std::vector<BatchSkip> skipped;
  std::vector<std::string> errors;  // a root that cannot be read: said, and the run goes on
};

BatchScan scan_images(io::Env& env, const std::vector<std::string>& roots, Recursion recursion, Symlinks symlinks);

// True when one image is in the other's parent chain: the writer of one would lock out the reader of the other
// (siblings that only read a common parent may run together).
bool share_a_file(const BatchImage& a, const BatchImage& b);

}  // namespace vhdkit::cli
