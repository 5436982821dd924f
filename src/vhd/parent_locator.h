// SPDX-License-Identifier: Apache-2.0
// Parent locators of differencing disks: decoding what the child recorded about where its parent lives,
// turning it into host paths to try, and encoding the locators our writer records.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/utf16.h"
#include "vhd/vhd_format.h"

namespace vhdkit::vhd {

// The text a locator's platform data holds, in UTF-8: UTF-16LE for the Windows codes, a file:// URL for
// MacX. Returns nullopt with a reason in *why when the bytes are not valid text.
std::optional<std::string> decode_locator_text(uint32_t platform_code, std::span<const std::byte> data,
                                               std::string* why);

// The host path a locator text names, or nullopt when it cannot name a file on this host (for example a
// drive-letter path such as C:\images\parent.vhd). Relative Windows paths (".\\parent.vhd",
// "..\\base\\parent.vhd") are resolved against child_dir with backslashes read as separators.
std::optional<std::string> host_path_for(uint32_t platform_code, std::string_view text, const std::string& child_dir);

// What our writer records: the relative form ".\\name.vhd" (backslashes, as Windows writes it) of
// parent_path as seen from the folder of child_path. Both paths absolute.
std::string windows_relative_path(const std::string& child_path, const std::string& parent_path);

}  // namespace vhdkit::vhd
