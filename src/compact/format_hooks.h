// SPDX-License-Identifier: Apache-2.0
// The compaction hooks of the formats, as a table keyed by format (format_hooks.cpp): whether an opened
// image can be compacted in a mode, and the CompactableImage over it. A raw image can only be retrimmed.
#pragma once

#include <memory>
#include <string>

#include "compact/compact.h"
#include "compact/compactable.h"
#include "disk/virtual_disk.h"
#include "io/file.h"

namespace vhdkit::compact {

// NotSupported with the reason for raw images and fixed disks in every mode but Retrim.
Status check_compactable(disk::VirtualDisk& disk, Mode mode);
Result<std::unique_ptr<CompactableImage>> make_compactable(std::unique_ptr<disk::VirtualDisk> disk, Mode mode);

// Opens (locked: Exclusive for ReadWrite, Shared otherwise) and wraps the image at path; parents required.
Result<std::unique_ptr<CompactableImage>> open_compactable(io::Env& env, const std::string& path, io::Access access,
                                                           Mode mode = Mode::Prezeroed);

}  // namespace vhdkit::compact
