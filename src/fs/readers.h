// SPDX-License-Identifier: Apache-2.0
// The table of file-system readers: each recognises its volumes from their first bytes and reads what they
// use. map_usage walks it in order, so a new file system is one row here and one file of its own.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "fs/volume_scan.h"

namespace vhdkit::fs::detail {

struct Reader {
  std::string_view name;
  // Recognises the file system from the window's first min(size, kProbeBytes) bytes.
  bool (*recognises)(std::span<const std::byte> head);
  // Reads [offset, offset + size) of the disk; `head` is the window's first bytes, as given to recognises.
  // Fails only when the disk cannot be read; doubt is a kept-whole VolumeScan with its reason.
  Result<VolumeScan> (*read)(disk::VirtualDisk& disk, std::span<const std::byte> head, uint64_t offset, uint64_t size);
};

// In the order they are tried: where two signatures can both be present, the one whose tool leaves the
// other's behind comes first.
std::span<const Reader> readers();

// The first reader that recognises `head`, or nullptr.
const Reader* recognise(std::span<const std::byte> head);

}  // namespace vhdkit::fs::detail
