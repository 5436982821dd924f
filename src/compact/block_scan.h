// SPDX-License-Identifier: Apache-2.0
// Reading a block for the zero scan, shared by the format hooks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "io/file.h"

namespace vhdkit::compact {

// The first piece is small: a block that holds data usually shows it at once, and the rest of it need not
// be read. Later pieces are large (few reads) yet bound the memory at 256 MiB blocks.
inline constexpr uint64_t kFirstScanPiece = 64 * 1024;
inline constexpr uint64_t kScanPiece = 4 << 20;

struct NoPrefetch {
  void operator()(uint64_t, uint64_t) const {}
};

// Reads [offset, offset + length) through read(offset, buffer) piece by piece into `buffer` and hands each
// piece to fn(offset of the piece within the range, bytes), which returns (Result<bool>) whether to go on.
// Once the first piece did not settle it, ahead(offset, length) is told the rest will be read (io's
// prefetch: the kernel keeps several reads of it in flight while the pieces are checked).
template <class Read, class Fn, class Ahead = NoPrefetch>
Status scan_pieces(Read&& read, uint64_t offset, uint64_t length, Bytes& buffer, Fn&& fn, Ahead&& ahead = Ahead{}) {
  for (uint64_t at = 0; at < length;) {
    uint64_t n = std::min(at == 0 ? kFirstScanPiece : kScanPiece, length - at);
    buffer.resize(n);
    VHDKIT_TRY(read(offset + at, std::span<std::byte>(buffer)));
    VHDKIT_ASSIGN(bool go_on, fn(at, std::span<const std::byte>(buffer)));
    if (!go_on) break;
    if (at == 0 && n < length) ahead(offset + n, length - n);
    at += n;
  }
  return ok();
}

// Reads [offset, offset + buf.size()) of the host file through read(offset, buffer), but only where `data`
// (the host's data ranges, io::File::data_ranges, sorted) says bytes are stored: holes and unwritten extents
// read as zeros, so they are filled in without a read.
template <class Read>
Status read_skipping_holes(Read&& read, std::span<const io::ByteRun> data, uint64_t offset, std::span<std::byte> buf) {
  std::memset(buf.data(), 0, buf.size());
  const uint64_t end = offset + buf.size();
  for (const io::ByteRun& r : data) {
    if (r.end() <= offset) continue;
    if (r.offset >= end) break;
    uint64_t a = std::max(r.offset, offset), b = std::min(r.end(), end);
    VHDKIT_TRY(read(a, buf.subspan(a - offset, b - a)));
  }
  return ok();
}

// Whether [offset, offset + length) holds no stored byte by `data`.
inline bool all_hole(std::span<const io::ByteRun> data, uint64_t offset, uint64_t length) {
  for (const io::ByteRun& r : data)
    if (r.offset < offset + length && offset < r.end()) return false;
  return true;
}

}  // namespace vhdkit::compact
