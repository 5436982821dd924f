// SPDX-License-Identifier: Apache-2.0
// A second File over an open File that it does not own: the dispatcher parses an image read-only through
// it (to judge the image before a read-write open could write anything), without opening the path again.
#pragma once

#include <memory>

#include "io/file.h"

namespace vhdkit::io {

// Reads and writes go to `inner`, which must outlive the borrowed file; locks are the inner file's
// business (the borrowed file neither takes nor drops them).
std::unique_ptr<File> borrow(File& inner);

}  // namespace vhdkit::io
