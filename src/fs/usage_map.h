// SPDX-License-Identifier: Apache-2.0
// The file-system layer: turns a virtual disk into a map of the bytes that hold live data, for the Full and
// Quick compaction modes. Read-only: nothing here ever writes the guest.
//
// Conservative by construction: a byte is "unused" only when a structure we fully understood and validated
// says so (a free block in a clean ext2/3/4 bitmap, a swap area's page space, disk space outside every
// partition of a valid table). Anything we cannot read, or read but do not trust, is listed as used, and the
// reason is reported (Volume::reason, UsageMap::notes). A wrong "unused" destroys user data; a wrong "used"
// only costs space.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "disk/virtual_disk.h"

namespace vhdkit::fs {

// A run of bytes of the virtual disk.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t end() const { return offset + length; }
  bool operator==(const ByteRange&) const = default;
};

// One partition or volume found, for reports (info, dry run, service state).
struct Volume {
  enum class State {
    Read,       // its file system was read: only what it uses is in UsageMap::used
    KeptWhole,  // all of it is in UsageMap::used; `reason` says why
  };
  std::string table;    // "gpt", "mbr", "none" (a file system on the bare disk, as WSL2's ext4.vhdx)
  std::string type;     // partition type ("Linux filesystem", "EFI System", "Linux swap", "LVM", "unknown 0x8f")
  uint64_t offset = 0;  // bytes of the virtual disk
  uint64_t size = 0;
  std::string filesystem;  // "ext4", "ext3", "ext2", "swap"; "" when none was recognised
  State state = State::KeptWhole;
  std::string reason;  // why it was kept whole ("the journal needs recovery", "LVM: not read yet, kept whole")
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;
};

struct UsageMap {
  std::vector<ByteRange> used;     // sorted, merged, within the disk; everything not listed is unused
  std::vector<Volume> volumes;     // in disk order
  std::vector<std::string> notes;  // what the reader had to work around ("GPT primary header damaged: used the backup")
  // True when at least one volume was read (ext2/3/4 or swap). False: no file system told us anything, so
  // Full falls back to Prezeroed and Quick to Pretrimmed. (Even then `used` may leave space outside the
  // partitions unused.)
  bool any_filesystem_read = false;
};

std::string_view to_string(Volume::State s);  // "read", "kept whole"

// Reads the partition table (GPT, MBR, or none) and every file system it can (ext2/3/4 through libext2fs,
// Linux swap). Fails only when the disk cannot be read; damaged or unknown structures are not errors but
// "used" ranges with reasons. Safe to call concurrently on different disks (each call reads only its disk).
Result<UsageMap> map_usage(disk::VirtualDisk& disk);

// The bytes the map calls unused (the complement of `used` within [0, disk_size)), for reports and tests.
std::vector<ByteRange> unused_ranges(const UsageMap& map, uint64_t disk_size);

}  // namespace vhdkit::fs
