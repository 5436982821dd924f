// SPDX-License-Identifier: Apache-2.0
#include "image/open_image.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "image/drivers.h"

namespace vhdkit::image {

Status take_lock(io::File& file, io::Access access, disk::Lock lock) {
  if (access == io::Access::ReadWrite) lock = disk::Lock::Exclusive;
  switch (lock) {
    case disk::Lock::None: return ok();
    case disk::Lock::Shared: return file.try_lock(io::LockMode::Shared);
    case disk::Lock::Exclusive: return file.try_lock(io::LockMode::Exclusive);
    case disk::Lock::NoWriter: return file.try_lock(io::LockMode::NoWriter);
  }
  return ok();
}

Result<disk::Format> detect_format(io::File& file) {
  constexpr size_t kProbe = disk::ProbeBytes::kProbeBytes;
  VHDKIT_ASSIGN(uint64_t size, file.size());
  size_t head_len = static_cast<size_t>(std::min<uint64_t>(size, kProbe));
  size_t tail_len = static_cast<size_t>(std::min<uint64_t>(size, kProbe));
  std::vector<std::byte> head(head_len), tail(tail_len);
  VHDKIT_TRY(file.read_at(0, head));
  VHDKIT_TRY(file.read_at(size - tail_len, tail));
  disk::ProbeBytes bytes{head, tail, size};
  const disk::Driver* best = nullptr;
  int best_score = 0;
  for (const disk::Driver* d : drivers()) {
    int score = d->probe(bytes);
    if (score > best_score) best = d, best_score = score;
  }
  if (!best) return fail(ReturnCode::NotSupported, file.path(), "no driver recognises this file");
  return best->format();
}

Result<std::unique_ptr<disk::VirtualDisk>> open_file(io::Env& env, std::unique_ptr<io::File> file,
                                                     const disk::OpenOptions& options) {
  disk::Format format;
  if (options.format) {
    format = *options.format;
  } else {
    VHDKIT_ASSIGN(format, detect_format(*file));
  }
  VHDKIT_ASSIGN(const disk::Driver* driver, driver_for(format, file->path()));
  return driver->open(env, std::move(file), options);
}

Result<std::unique_ptr<disk::VirtualDisk>> open_image(io::Env& env, const std::string& path,
                                                      const disk::OpenOptions& options) {
  VHDKIT_ASSIGN(auto file, env.open(path, options.access));
  // Locked before a byte is parsed, so that nobody changes what is being validated (D9).
  VHDKIT_TRY(take_lock(*file, options.access, options.lock));
  return open_file(env, std::move(file), options);
}

Result<std::unique_ptr<disk::VirtualDisk>> create_image(io::Env& env, const std::string& path,
                                                        const disk::CreateOptions& options) {
  if (options.type == disk::DiskType::Differencing && !options.parent_path)
    return fail(ReturnCode::InvalidParameter, path, "a differencing disk needs a parent");
  VHDKIT_ASSIGN(const disk::Driver* driver, driver_for(options.format, path));
  VHDKIT_ASSIGN(auto created, driver->create(env, path, options));
  VHDKIT_TRY(take_lock(created->file(), io::Access::ReadWrite, disk::Lock::Exclusive));
  return created;
}

}  // namespace vhdkit::image
