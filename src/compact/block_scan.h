// SPDX-License-Identifier: Apache-2.0
// Reading a block for the zero scan, shared by the format hooks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

#include "core/bytes.h"
#include "core/error.h"

namespace vhdkit::compact {

// The first piece is small: a block that holds data usually shows it at once, and the rest of it need not
// be read. Later pieces are large (few reads) yet bound the memory at 256 MiB blocks.
inline constexpr uint64_t kFirstScanPiece = 64 * 1024;
inline constexpr uint64_t kScanPiece = 4 << 20;

// Reads [offset, offset + length) through read(offset, buffer) piece by piece into `buffer` and hands each
// piece to fn(offset of the piece within the range, bytes), which returns (Result<bool>) whether to go on.
template <class Read, class Fn>
Status scan_pieces(Read&& read, uint64_t offset, uint64_t length, Bytes& buffer, Fn&& fn) {
  for (uint64_t at = 0; at < length;) {
    uint64_t n = std::min(at == 0 ? kFirstScanPiece : kScanPiece, length - at);
    buffer.resize(n);
    VHDKIT_TRY(read(offset + at, std::span<std::byte>(buffer)));
    VHDKIT_ASSIGN(bool go_on, fn(at, std::span<const std::byte>(buffer)));
    if (!go_on) break;
    at += n;
  }
  return ok();
}

}  // namespace vhdkit::compact
