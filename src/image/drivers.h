// SPDX-License-Identifier: Apache-2.0
// The driver table: every image format vhdkit reads, best-known signatures first. Adding a format means
// adding its driver here and nowhere else.
#pragma once

#include <span>

#include "core/error.h"
#include "disk/driver.h"

namespace vhdkit::image {

std::span<const disk::Driver* const> drivers();

// The driver of a format; NotSupported naming the format when vhdkit has none.
Result<const disk::Driver*> driver_for(disk::Format format, const std::string& path);

}  // namespace vhdkit::image
