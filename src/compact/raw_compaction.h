// SPDX-License-Identifier: Apache-2.0
// The raw hook of the compaction engine: the file is the disk, so there are no blocks to release or move and
// Retrim (punching holes where the guest stores nothing) is the one mode that can give space back.
#pragma once

#include <memory>

#include "compact/compact.h"
#include "compact/compactable.h"
#include "disk/virtual_disk.h"

namespace vhdkit::raw {

// NotSupported for every mode but Retrim, naming Retrim.
Status check_compactable(disk::VirtualDisk& disk, compact::Mode mode);
Result<std::unique_ptr<compact::CompactableImage>> make_compactable(std::unique_ptr<disk::VirtualDisk> disk,
                                                                    compact::Mode mode);

}  // namespace vhdkit::raw
