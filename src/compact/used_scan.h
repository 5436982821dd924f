// SPDX-License-Identifier: Apache-2.0
// Reading only the bytes a file system uses, for Full mode's verdicts (the format hooks' classify_used).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>

#include "compact/block_scan.h"
#include "core/bytes.h"
#include "core/checked.h"
#include "core/error.h"
#include "disk/virtual_disk.h"
#include "fs/usage_map.h"

namespace vhdkit::compact {

// The virtual bytes of block `block`: [block * block_size, + block_size) clipped to the disk (empty past it).
inline fs::ByteRange block_extent(uint64_t block, uint64_t block_size, uint64_t virtual_size) {
  auto start = checked_mul(block, block_size);
  if (!start || *start >= virtual_size) return {virtual_size, 0};
  return {*start, std::min(block_size, virtual_size - *start)};
}

// Do the used ranges (virtual-disk offsets) read as zeros? read(virtual offset, buffer) reads what the block
// stores there. Stops at the first non-zero piece.
template <class Read>
Result<bool> used_bytes_zero(Read&& read, std::span<const fs::ByteRange> used, Bytes& buffer) {
  bool zero = true;
  auto zero_piece = [&](uint64_t, std::span<const std::byte> d) -> Result<bool> { return zero = all_zero(d); };
  for (const fs::ByteRange& r : used) {
    VHDKIT_TRY(scan_pieces(read, r.offset, r.length, buffer, zero_piece));
    if (!zero) return false;
  }
  return true;
}

// What a differencing child reads on the used ranges, against its parent and against zeros.
struct UsedReading {
  bool same_as_parent = true;
  bool zero = true;
};

// Reads the used ranges through the child (its whole chain) and through its parent, piece by piece, and stops
// as soon as the child neither reads the parent's bytes nor zeros.
inline Result<UsedReading> read_used_against_parent(disk::VirtualDisk& child, std::span<const fs::ByteRange> used,
                                                    Bytes& buffer, Bytes& parent_buffer) {
  UsedReading r;
  disk::VirtualDisk* parent = child.parent();
  if (!parent) return fail(ReturnCode::Failed, child.path(), "a differencing disk without its parent was compacted");
  auto read = [&](uint64_t offset, std::span<std::byte> b) { return child.read(offset, b); };
  for (const fs::ByteRange& range : used) {
    auto compare = [&](uint64_t at, std::span<const std::byte> d) -> Result<bool> {
      parent_buffer.resize(d.size());
      VHDKIT_TRY(parent->read(range.offset + at, parent_buffer));
      r.same_as_parent = r.same_as_parent && std::memcmp(d.data(), parent_buffer.data(), d.size()) == 0;
      r.zero = r.zero && all_zero(d);
      return r.same_as_parent || r.zero;
    };
    VHDKIT_TRY(scan_pieces(read, range.offset, range.length, buffer, compare));
    if (!r.same_as_parent && !r.zero) break;
  }
  return r;
}

}  // namespace vhdkit::compact
