// SPDX-License-Identifier: Apache-2.0
// The parent rule: Full and Quick change what unused ranges read (and a VHDX's DataWriteGuid), so a disk that
// is the parent of differencing disks gets no file-system reclaim: its children would read changed bytes, or
// no longer link. A parent is a disk the caller says is one (Options::parent_of_children), or one a VHD or VHDX
// child in the same folder names (VHD: the parent's Unique Id; VHDX: parent_linkage = its DataWriteGuid).
#pragma once

#include <optional>
#include <string>

#include "compact/compact.h"
#include "core/error.h"
#include "disk/virtual_disk.h"
#include "io/file.h"

namespace vhdkit::compact {

// The path of a differencing disk in disk's folder whose parent link names `disk`, if there is one. Each
// candidate (a .vhd or .vhdx file) is opened read-only, unlocked, its own parents skipped. A file that is no
// image opens as raw (no child); one that looks like an image but cannot be read is an error (it may be one).
Result<std::optional<std::string>> child_beside(io::Env& env, disk::VirtualDisk& disk);

// InvalidState (32775) for Full and Quick on a parent, with a message that offers Prezeroed; ok otherwise.
Status check_parent_rule(io::Env& env, disk::VirtualDisk& disk, const Options& options);

}  // namespace vhdkit::compact
