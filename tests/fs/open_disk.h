// SPDX-License-Identifier: Apache-2.0
// The one place the fs tests open an image file as a disk: through the dispatcher, like every command.
#pragma once

#include <cstdint>
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

// The volume a map found at a byte offset of the disk; none there fails the test (and gives nullptr). The
// pointer is into the map, so a temporary map is refused at compile time.
inline const fs::Volume* volume_at(const fs::UsageMap& m, uint64_t offset) {
  for (const auto& v : m.volumes)
    if (v.offset == offset) return &v;
  ADD_FAILURE() << "no volume at " << offset;
  return nullptr;
}
const fs::Volume* volume_at(fs::UsageMap&&, uint64_t) = delete;

}  // namespace vhdkit::fs_test
