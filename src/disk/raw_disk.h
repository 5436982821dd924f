// A raw image: the file is the virtual disk. Used by tests, comparisons and the Retrim path.
#pragma once

#include "disk/virtual_disk.h"

namespace vhdkit::disk {

Result<std::unique_ptr<VirtualDisk>> open_raw(std::unique_ptr<io::File> file, io::Access access);

}  // namespace vhdkit::disk
