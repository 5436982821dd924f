// The one place the fs tests open an image file as a disk (disk::open_image today; image::open_image once
// it moves to src/image: change it here only).
#pragma once

#include <memory>
#include <string>

#include "disk/virtual_disk.h"
#include "io/file.h"

namespace vhdkit::fs_test {

inline Result<std::unique_ptr<disk::VirtualDisk>> open_disk(io::Env& env, const std::string& path) {
  return disk::open_image(env, path);
}
inline Result<std::unique_ptr<disk::VirtualDisk>> open_disk(const std::string& path) {
  return open_disk(io::Env::posix(), path);
}

}  // namespace vhdkit::fs_test
