// SPDX-License-Identifier: Apache-2.0
// The file-system part of a compaction report as short lines of text, shared by `info` and `compact --dry-run`:
// one line per volume, what each mode would release, and why space stays.
#pragma once

#include <string>
#include <vector>

#include "compact/compact.h"

namespace vhdkit::cli {

std::vector<std::string> reclaim_lines(const compact::Report& report);

}  // namespace vhdkit::cli
