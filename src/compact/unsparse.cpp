// SPDX-License-Identifier: Apache-2.0
#include "compact/unsparse.h"

#include <algorithm>
#include <vector>

#include "image/open_image.h"

namespace vhdkit::compact {
namespace {

// Zeros over a hole where the host cannot preallocate: the range already reads zeros, so a torn or partial
// write leaves it reading the same.
Status write_zeros(io::File& file, uint64_t offset, uint64_t length) {
  constexpr uint64_t kChunk = 1 << 20;
  std::vector<std::byte> zeros(static_cast<size_t>(std::min(length, kChunk)));
  for (uint64_t done = 0; done < length;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), length - done));
    VHDKIT_TRY(file.write_at(offset + done, std::span<const std::byte>(zeros).first(n)));
    done += n;
  }
  return ok();
}

}  // namespace

Result<UnsparseReport> unsparse_image(io::Env& env, const std::string& path) {
  if (!env.exists(path)) return fail(ReturnCode::FileNotFound, path, "no such file");
  VHDKIT_TRY(env.check_writable(path));
  VHDKIT_ASSIGN(auto file, env.open(path, io::Access::ReadWrite));
  VHDKIT_TRY(image::take_lock(*file, io::Access::ReadWrite, disk::Lock::Exclusive));
  UnsparseReport r;
  r.path = path;
  VHDKIT_ASSIGN(r.file_size, file->size());
  VHDKIT_ASSIGN(r.allocated_bytes_before, file->allocated_bytes());
  VHDKIT_ASSIGN(std::vector<io::ByteRun> data, file->data_ranges(0, r.file_size));
  uint64_t at = 0;
  auto fill = [&](uint64_t offset, uint64_t length) -> Status {
    if (length == 0) return ok();
    ++r.holes;
    r.hole_bytes += length;
    auto s = file->allocate(offset, length);
    if (!s && s.error().code() == ReturnCode::NotSupported) return write_zeros(*file, offset, length);
    return s;
  };
  for (const io::ByteRun& d : data) {
    VHDKIT_TRY(fill(at, d.offset - at));
    at = d.end();
  }
  VHDKIT_TRY(fill(at, r.file_size - at));
  VHDKIT_TRY(file->flush());
  VHDKIT_ASSIGN(r.allocated_bytes_after, file->allocated_bytes());
  (void)file->unlock();
  return r;
}

}  // namespace vhdkit::compact
