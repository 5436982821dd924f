// The VHD hook of the compaction engine: a dynamic or differencing VHD seen as a CompactableImage.
// Durable steps (DESIGN.md, crash safety): release = BAT entries to 0xFFFFFFFF, flush; remap (the executor
// has copied the blocks into unreferenced space and flushed) = point the BAT entries at the copies, flush; shrink = write the
// footer at the new end, flush, truncate, flush. Every BAT change is a whole aligned sector write.
#pragma once

#include <memory>
#include <string>

#include "compact/compactable.h"
#include "io/file.h"

namespace vhdkit::vhd {

// Opens the VHD at path for compaction. Fixed disks are NotSupported (they have no blocks to release);
// a malformed image is refused (Failed, naming the structure) before anything is written.
Result<std::unique_ptr<compact::CompactableImage>> open_for_compaction(io::Env& env, const std::string& path,
                                                                       io::Access access);

}  // namespace vhdkit::vhd
