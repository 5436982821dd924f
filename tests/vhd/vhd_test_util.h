// SPDX-License-Identifier: Apache-2.0
// Helpers for the VHD tests: opening through open_image, whole-disk reads, and qemu-img as referee.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "disk/virtual_disk.h"
#include "test_support.h"
#include "vhd/vhd_image.h"

namespace vhdkit::vhd::testing {

using namespace vhdkit::testing;

// Every virtual byte, read in chunks of `chunk` bytes (to exercise block-crossing reads).
std::vector<std::byte> read_all(disk::VirtualDisk& d, size_t chunk = 3 << 20);
// The bytes of `qemu-img convert -O raw` of the image (qemu_raw(), read and removed).
std::vector<std::byte> qemu_raw_bytes(const std::string& path, const TempDir& dir, const std::string& format = "vpc");
// `qemu-img map --output=json`, parsed.
std::vector<disk::MapExtent> qemu_map(const std::string& path, const std::string& format = "vpc");
uint64_t qemu_virtual_size(const std::string& path, const std::string& format = "vpc");
std::string map_text(const std::vector<disk::MapExtent>& m);
// Recomputes the checksum of the footer at `offset` / the dynamic header at `offset`.
void reseal_footer(const std::string& path, uint64_t offset);
void reseal_header(const std::string& path, uint64_t offset);
std::vector<uint8_t> be32(uint32_t v);
std::vector<uint8_t> be64(uint64_t v);
std::vector<std::byte> pattern(size_t n, uint8_t seed);

}  // namespace vhdkit::vhd::testing
