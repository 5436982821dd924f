// SPDX-License-Identifier: Apache-2.0
// Finding a differencing VHDX's parent ([MS-VHDX] 2.6.2.6): the locator's relative_path (relative to the
// child's folder), then volume_path and absolute_win32_path where they are usable on this host; the
// parent found must carry the DataWriteGuid that the child's parent_linkage names.
#pragma once

#include <string>
#include <vector>

#include "vhdx/metadata.h"

namespace vhdkit::vhdx {

// Host paths to try, in the spec's order, for the locator of the child at child_path.
std::vector<std::string> parent_candidates(const ParentLocator& locator, const std::string& child_path);

// The relative_path value a child should record for its parent, both paths absolute (Env::absolute)
// (Windows form, e.g. ".\parent.vhdx" or "..\base\parent.vhdx").
std::string relative_parent_path(const std::string& child_absolute, const std::string& parent_absolute);

}  // namespace vhdkit::vhdx
