// SPDX-License-Identifier: Apache-2.0
#include "io/file.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <vector>

namespace vhdkit::io {

Status File::poisoned_check() const {
  if (sticky_) {
    return fail(sticky_->code(), path_,
                fmt::format("refusing to write after an earlier failure ({}); reopen the image", sticky_->message()));
  }
  return ok();
}

// D7: the first failed mutation poisons the file; nothing is retried.
Status File::remember(Status s) {
  if (!s && !sticky_) sticky_ = s.error();
  return s;
}

Result<size_t> File::read_up_to(uint64_t offset, std::span<std::byte> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    VHDKIT_ASSIGN(size_t n, do_read(offset + done, buf.subspan(done)));
    if (n == 0) break;
    done += n;
  }
  return done;
}

Status File::read_at(uint64_t offset, std::span<std::byte> buf) {
  VHDKIT_ASSIGN(size_t n, read_up_to(offset, buf));
  if (n != buf.size()) {
    return fail(ReturnCode::Failed, path_,
                fmt::format("unexpected end of file: wanted {} bytes at offset {}, the file ends at {}", buf.size(),
                            offset, offset + n));
  }
  return ok();
}

Status File::write_at(uint64_t offset, std::span<const std::byte> buf) {
  VHDKIT_TRY(poisoned_check());
  size_t done = 0;
  while (done < buf.size()) {
    auto n = do_write(offset + done, buf.subspan(done));
    if (!n) return remember(std::unexpected(n.error()));
    if (*n == 0) {
      return remember(
          fail(ReturnCode::Failed, path_, fmt::format("write at offset {} made no progress", offset + done)));
    }
    done += *n;
  }
  return ok();
}

Status File::flush() {
  VHDKIT_TRY(poisoned_check());
  return remember(do_flush());
}

Status File::truncate(uint64_t size) {
  VHDKIT_TRY(poisoned_check());
  return remember(do_truncate(size));
}

Result<uint64_t> File::size() { return do_size(); }

Status File::punch_hole(uint64_t offset, uint64_t length) {
  VHDKIT_TRY(poisoned_check());
  auto s = do_punch_hole(offset, length);
  // "Not supported" changes nothing on disk, so it does not poison the file.
  if (!s && s.error().code() == ReturnCode::NotSupported) return s;
  return remember(s);
}

Status File::copy_range(uint64_t from, uint64_t to, uint64_t length) {
  VHDKIT_TRY(poisoned_check());
  if (length == 0) return ok();
  if (from < to + length && to < from + length) {
    return fail(ReturnCode::InvalidParameter, path_,
                fmt::format("copy_range: overlapping ranges {}+{} and {}+{}", from, length, to, length));
  }
  return remember(do_copy_range(from, to, length));
}

Status File::do_copy_range(uint64_t from, uint64_t to, uint64_t length) {
  constexpr uint64_t kChunk = 1 << 20;
  std::vector<std::byte> buf(static_cast<size_t>(std::min(length, kChunk)));
  for (uint64_t done = 0; done < length;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), length - done));
    VHDKIT_TRY(read_at(from + done, std::span(buf).first(n)));
    size_t written = 0;
    while (written < n) {
      VHDKIT_ASSIGN(size_t w,
                    do_write(to + done + written, std::span<const std::byte>(buf).subspan(written, n - written)));
      if (w == 0) return fail(ReturnCode::Failed, path_, "copy made no progress");
      written += w;
    }
    done += n;
  }
  return ok();
}

Result<uint64_t> File::allocated_bytes() { return do_allocated_bytes(); }

Result<std::vector<ByteRun>> File::data_ranges(uint64_t offset, uint64_t length) {
  VHDKIT_ASSIGN(uint64_t size, do_size());
  if (offset >= size || length == 0) return std::vector<ByteRun>{};
  length = std::min(length, size - offset);
  VHDKIT_ASSIGN(std::vector<ByteRun> runs, do_data_ranges(offset, length));
  // Whatever an implementation says, the answer stays inside the range asked about.
  std::vector<ByteRun> out;
  for (const ByteRun& r : runs) {
    uint64_t a = std::max(r.offset, offset), b = std::min(r.end(), offset + length);
    if (a >= b) continue;
    if (!out.empty() && a <= out.back().end()) {
      out.back().length = std::max(out.back().end(), b) - out.back().offset;
    } else {
      out.push_back({a, b - a});
    }
  }
  return out;
}

Result<std::vector<ByteRun>> File::do_data_ranges(uint64_t offset, uint64_t length) {
  return std::vector<ByteRun>{{offset, length}};
}

Result<uint64_t> File::host_block_size() { return do_host_block_size(); }
Result<uint64_t> File::do_host_block_size() { return uint64_t{4096}; }

Status File::allocate(uint64_t offset, uint64_t length) {
  VHDKIT_TRY(poisoned_check());
  if (length == 0) return ok();
  auto s = do_allocate(offset, length);
  // Like punch_hole: "not supported" changed nothing.
  if (!s && s.error().code() == ReturnCode::NotSupported) return s;
  return remember(s);
}

Status File::do_allocate(uint64_t, uint64_t) {
  return fail(ReturnCode::NotSupported, path_, "this kind of file cannot preallocate space");
}

std::string directory_of(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

Result<std::string> Env::canonical(const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_relative()) p = std::filesystem::path("/") / p;
  return p.lexically_normal().string();
}

Result<std::string> Env::absolute(const std::string& path) { return Env::canonical(path); }

Result<FileIdentity> File::identity() { return do_identity(); }
Result<FileIdentity> File::do_identity() {
  return fail(ReturnCode::NotSupported, path_, "this kind of file has no device and inode");
}

Status File::try_lock(LockMode mode) { return do_try_lock(mode); }
Status File::unlock() { return do_unlock(); }

}  // namespace vhdkit::io
