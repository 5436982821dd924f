// SPDX-License-Identifier: Apache-2.0
#include "service/image_state.h"
#include "image/open_image.h"

#include <algorithm>

#include <fmt/format.h>

#include "disk/virtual_disk.h"
#include "image/open_image.h"

namespace vhdkit::service {
namespace {

Status check_absolute(const std::string& path) {
  if (path.empty() || path.front() != '/')
    return fail(ReturnCode::InvalidParameter, path, "Path must be absolute (a fully qualified path)");
  return ok();
}

}  // namespace

compact::ReaderLock reader_lock_for(io::Env& access, const std::string& path) {
  return access.check_writable(path) ? compact::ReaderLock::Shared : compact::ReaderLock::NoWriter;
}

Result<VirtualHardDiskState> get_virtual_hard_disk_state(io::Env& access, Engine& engine, const std::string& path) {
  VHDKIT_TRY(check_absolute(path));
  compact::Options dry;
  dry.action = compact::Action::DryRun;
  dry.reader_lock = reader_lock_for(access, path);
  VirtualHardDiskState state;
  auto prepared = engine.prepare(access, path, dry);
  if (!prepared && prepared.error().code() == ReturnCode::InvalidState) {
    // A parent of differencing disks gets no Full (the parent rule): its state is what Prezeroed would do.
    dry.mode = compact::Mode::Prezeroed;
    prepared = engine.prepare(access, path, dry);
  }
  if (!prepared) {
    // Another program, or a job of this service, holds the image for writing: its size is all we say.
    if (prepared.error().code() != ReturnCode::InUse) return fail(prepared.error());
    VHDKIT_ASSIGN(auto file, access.open(path, io::Access::ReadOnly, io::Creation::OpenExisting));
    VHDKIT_ASSIGN(state.file_size, file->size());
    state.in_use = true;
    return state;
  }
  if (disk::VirtualDisk* disk = (*prepared)->disk()) {
    state.physical_sector_size = disk->info().physical_sector_size;
    if (auto map = disk->map()) {
      bool aligned = true;
      for (const auto& e : *map)
        if (e.depth == 0 && e.offset && *e.offset % 4096 != 0) aligned = false;
      state.alignment = aligned ? 1 : 0;
    }
  }
  VHDKIT_ASSIGN(compact::Report report, (*prepared)->run(nullptr));
  state.file_size = report.file_size_before;
  state.min_internal_size = report.file_size_after;
  // Blocks the compaction would touch per block holding data; a VHDX can count more (entries that only
  // name space, sector bitmap blocks that move): at most 100.
  state.fragmentation_percentage =
      report.blocks_allocated_before
          ? static_cast<uint32_t>(std::min<uint64_t>(
                100, (report.blocks_released + report.blocks_moved) * 100 / report.blocks_allocated_before))
          : 0;
  state.report = std::move(report);
  return state;
}

Result<Validation> validate_virtual_hard_disk(io::Env& access, const std::string& path) {
  VHDKIT_TRY(check_absolute(path));
  disk::OpenOptions options;
  options.parents = disk::ParentPolicy::Optional;
  Validation v;
  auto image = image::open_image(access, path, options);
  if (!image) {
    // An unsupported format, or a path that names no image file, is the caller's mistake; anything else
    // the image's.
    if (image.error().code() == ReturnCode::NotSupported || image.error().code() == ReturnCode::AccessDenied ||
        image.error().code() == ReturnCode::FileNotFound || image.error().code() == ReturnCode::InvalidParameter)
      return fail(image.error());
    v.problems.push_back(image.error().message());
    return v;
  }
  v.problems = (*image)->check();
  v.valid = v.problems.empty();
  return v;
}

}  // namespace vhdkit::service
