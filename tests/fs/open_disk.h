// SPDX-License-Identifier: Apache-2.0
// The one place the fs tests open an image file as a disk: through the dispatcher, like every command.
#pragma once

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "disk/virtual_disk.h"
#include "fs/usage_map.h"
#include "image/open_image.h"
#include "io/file.h"

namespace vhdkit::fs_test {

inline Result<std::unique_ptr<disk::VirtualDisk>> open_disk(io::Env& env, const std::string& path) {
  return image::open_image(env, path);
}
inline Result<std::unique_ptr<disk::VirtualDisk>> open_disk(const std::string& path) {
  return open_disk(io::Env::posix(), path);
}

// The map of an image file; a failure to open or map it fails the test (and gives an empty map).
inline fs::UsageMap map_ok(const std::string& path) {
  auto d = open_disk(path);
  EXPECT_TRUE(d) << (d ? "" : d.error().what());
  if (!d) return {};
  auto m = fs::map_usage(**d);
  EXPECT_TRUE(m) << (m ? "" : m.error().what());
  return m ? *m : fs::UsageMap{};
}

}  // namespace vhdkit::fs_test
