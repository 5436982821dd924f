// SPDX-License-Identifier: Apache-2.0
// What an image format offers the dispatcher above it (src/image), as qemu's block drivers do: recognise
// its own bytes, open an already-open file, create a new file. Each format room exports exactly one
// Driver (raw::driver(), vhd::driver(), vhdx::driver()); nothing outside a format knows its signatures.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "io/file.h"

namespace vhdkit::disk {

// The bytes a driver may judge a file by: its first and last bytes (each up to kProbeBytes) and its size.
struct ProbeBytes {
  static constexpr size_t kProbeBytes = 4096;
  std::span<const std::byte> head;
  std::span<const std::byte> tail;
  uint64_t file_size = 0;
};

struct CreateOptions {
  Format format = Format::Vhd;
  DiskType type = DiskType::Dynamic;
  uint64_t virtual_size = 0;               // bytes; ignored for differencing disks (the parent's size)
  uint32_t block_size = 0;                 // 0: the format's default
  std::optional<std::string> parent_path;  // differencing disks
};

class Driver {
 public:
  virtual ~Driver() = default;
  virtual Format format() const = 0;
  // How sure the driver is that these bytes are its format: 0 not at all, 100 a signature it checks.
  // The dispatcher takes the highest score; raw answers 1 for anything, so it is the fallback.
  virtual int probe(const ProbeBytes& bytes) const = 0;
  // Opens a file already opened (and locked) by the dispatcher with options.access. Parents are opened
  // read-only through env.
  virtual Result<std::unique_ptr<VirtualDisk>> open(io::Env& env, std::unique_ptr<io::File> file,
                                                    const OpenOptions& options) const = 0;
  // Creates a new file at path (never overwriting one) and returns it open read-write.
  virtual Result<std::unique_ptr<VirtualDisk>> create(io::Env& env, const std::string& path,
                                                      const CreateOptions& options) const = 0;
};

}  // namespace vhdkit::disk
