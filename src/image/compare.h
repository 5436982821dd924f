// SPDX-License-Identifier: Apache-2.0
// Do two virtual disks hold the same bytes? Format-agnostic (any two of raw, VHD, VHDX), and fast on
// sparse images: ranges that both images' map() reports as reading zero are never read.
#pragma once

#include <cstdint>
#include <optional>

#include "disk/virtual_disk.h"

namespace vhdkit::image {

using disk::VirtualDisk;

enum class SizeRule {
  ZeroTail,  // like qemu-img compare: the larger disk's tail must read as zeros
  Strict,    // like qemu-img compare -s: different virtual sizes are a difference in themselves
};

struct Comparison {
  bool equal = true;
  bool sizes_differ = false;
  // The first byte (virtual offset) that differs; for a strict size mismatch, the smaller size.
  std::optional<uint64_t> first_difference;
};

Result<Comparison> compare_contents(VirtualDisk& a, VirtualDisk& b, SizeRule rule = SizeRule::ZeroTail);

}  // namespace vhdkit::image
