// SPDX-License-Identifier: Apache-2.0
// The VHD driver for the image dispatcher (src/image/drivers.h).
#pragma once

#include "disk/driver.h"

namespace vhdkit::vhd {

const disk::Driver& driver();

}  // namespace vhdkit::vhd
