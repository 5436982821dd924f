// SPDX-License-Identifier: Apache-2.0
// The VHDX driver for the image dispatcher (src/image/drivers.h).
#pragma once

#include "disk/driver.h"

namespace vhdkit::vhdx {

const disk::Driver& driver();

}  // namespace vhdkit::vhdx
