// SPDX-License-Identifier: Apache-2.0
// A raw image: the file is the virtual disk. Used by tests, comparisons and the Retrim path; its driver is
// the dispatcher's fallback (any file is a raw image).
#pragma once

#include "disk/driver.h"
#include "disk/virtual_disk.h"

namespace vhdkit::raw {

Result<std::unique_ptr<disk::VirtualDisk>> open_raw(std::unique_ptr<io::File> file, io::Access access);

const disk::Driver& driver();

}  // namespace vhdkit::raw
