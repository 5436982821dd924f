// SPDX-License-Identifier: Apache-2.0
#include "image/drivers.h"

#include <fmt/format.h>

#include <array>

#include "raw/raw_disk.h"
#include "vhd/vhd_driver.h"
#include "vhdx/vhdx_driver.h"

namespace vhdkit::image {

std::span<const disk::Driver* const> drivers() {
  static const std::array<const disk::Driver*, 3> table{&vhdx::driver(), &vhd::driver(), &raw::driver()};
  return table;
}

Result<const disk::Driver*> driver_for(disk::Format format, const std::string& path) {
  for (const disk::Driver* d : drivers())
    if (d->format() == format) return d;
  return fail(ReturnCode::NotSupported, path, fmt::format("{} images are not supported", disk::to_string(format)));
}

}  // namespace vhdkit::image
