// SPDX-License-Identifier: Apache-2.0
// The one way into an image file: open it once, lock it, let the driver table (drivers.h) recognise the
// format, and hand the same open file to that driver. Every command and the service come through here.
#pragma once

#include <memory>
#include <string>

#include "core/error.h"
#include "disk/driver.h"
#include "disk/virtual_disk.h"
#include "io/file.h"

namespace vhdkit::image {

// Opens the image at path (options.access; the lock options.lock asks, Exclusive for every read-write
// open) and parses it with the driver of its format (options.format, or the best probe).
Result<std::unique_ptr<disk::VirtualDisk>> open_image(io::Env& env, const std::string& path,
                                                      const disk::OpenOptions& options = {});

// The same, over a file the caller already opened (and locked, if it wants a lock).
Result<std::unique_ptr<disk::VirtualDisk>> open_file(io::Env& env, std::unique_ptr<io::File> file,
                                                     const disk::OpenOptions& options = {});

// Format detection alone, from the file's first and last bytes, without validating the rest.
Result<disk::Format> detect_format(io::File& file);

// Creates a new image (never overwriting a file) with the driver of options.format; returns it open
// read-write and locked.
Result<std::unique_ptr<disk::VirtualDisk>> create_image(io::Env& env, const std::string& path,
                                                        const disk::CreateOptions& options);

// Takes the lock `lock` on an open file (durability rule D9): InUse naming the holder on a conflict.
Status take_lock(io::File& file, io::Access access, disk::Lock lock);

}  // namespace vhdkit::image
