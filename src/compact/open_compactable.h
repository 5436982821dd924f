// Opens an image for compaction in whichever format it is, or says why that format cannot be compacted.
#pragma once

#include <memory>
#include <string>

#include "compact/compactable.h"
#include "io/file.h"

namespace vhdkit::compact {

// NotSupported for raw images, fixed disks and formats without a compaction hook (with the reason).
Result<std::unique_ptr<CompactableImage>> open_compactable(io::Env& env, const std::string& path,
                                                           io::Access access);

}  // namespace vhdkit::compact
