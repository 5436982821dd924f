// Creating an image of any format: the format-agnostic entry point of `vhdkit create` and of tests.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "disk/virtual_disk.h"

namespace vhdkit::disk {

struct CreateOptions {
  Format format = Format::Vhd;
  DiskType type = DiskType::Dynamic;
  uint64_t virtual_size = 0;          // bytes; ignored for differencing disks (the parent's size)
  uint32_t block_size = 0;            // 0: the format's default
  std::optional<std::string> parent_path;  // differencing disks
};

// Creates a new image file (an existing file is never overwritten) and returns it open read-write.
Result<std::unique_ptr<VirtualDisk>> create_image(io::Env& env, const std::string& path,
                                                  const CreateOptions& options);

}  // namespace vhdkit::disk
