// SPDX-License-Identifier: Apache-2.0
// What a file-system reader returns for one partition (or the bare disk): the ranges it uses, in bytes of
// the virtual disk, and how it was read. Readers are conservative: on any doubt they return the whole window
// as used with State::KeptWhole and the reason.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "fs/usage_map.h"

namespace vhdkit::fs::detail {

struct VolumeScan {
  std::string filesystem;  // "ext4", "swap", ...; "" when none recognised
  Volume::State state = Volume::State::KeptWhole;
  std::string reason;
  std::vector<ByteRange> used;  // bytes of the disk, inside the window
  std::vector<std::string> notes;
};

inline VolumeScan kept_whole(uint64_t offset, uint64_t size, std::string filesystem, std::string reason) {
  VolumeScan s;
  s.filesystem = std::move(filesystem);
  s.reason = std::move(reason);
  s.used.push_back({offset, size});
  return s;
}

// How many leading bytes of a window the probes look at (the swap signature may end a 64 KiB page).
constexpr uint64_t kProbeBytes = 65536;

// ext2/3/4: the superblock magic 0xEF53 at byte 1024 + 56 of the window.
bool looks_like_ext(std::span<const std::byte> head);
// Reads [offset, offset + size) as ext2/3/4 through libext2fs. Fails only when the disk cannot be read.
Result<VolumeScan> read_ext(disk::VirtualDisk& disk, uint64_t offset, uint64_t size);

// Linux swap: a signature in the last 10 bytes of the first page (page sizes 4 KiB to 64 KiB).
bool looks_like_swap(std::span<const std::byte> head);
VolumeScan read_swap(std::span<const std::byte> head, uint64_t offset, uint64_t size);

}  // namespace vhdkit::fs::detail
