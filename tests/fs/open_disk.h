// SPDX-License-Identifier: Apache-2.0
// The one place the fs tests open an image file as a disk: through the dispatcher, like every command.
#pragma once

#include <memory>
#include <string>

#include "disk/virtual_disk.h"
#include "image/open_image.h"
#include "io/file.h"

namespace vhdkit::fs_test {

inline Result<std::unique_ptr<disk::VirtualDisk>> open_disk(io::Env& env, const std::string& path) {
  return image::open_image(env, path);
}
inline Result<std::unique_ptr<disk::VirtualDisk>> open_disk(const std::string& path) {
  return open_disk(io::Env::posix(), path);
}

}  // namespace vhdkit::fs_test
