#include "service/image_state.h"

#include <algorithm>

#include <fmt/format.h>

#include "disk/virtual_disk.h"
#include "service/caller.h"

namespace vhdkit::service {
namespace {

// Opens the image read-only as the caller would and returns the identity of what was opened: later opens
// by the service are pinned to it.
Result<io::FileIdentity> check_readable(io::Env& access, const std::string& path) {
  if (path.empty() || path.front() != '/')
    return fail(ReturnCode::InvalidParameter, path, "Path must be absolute (a fully qualified path)");
  VHDKIT_ASSIGN(auto file, access.open(path, io::Access::ReadOnly, io::Creation::OpenExisting));
  return file->identity();
}

// Is another program writing the image? (An exclusive lock would not be granted.)
bool locked_by_another_program(io::Env& env, const std::string& path) {
  auto file = env.open(path, io::Access::ReadWrite, io::Creation::OpenExisting);
  if (!file) return false;
  auto s = (*file)->try_lock(io::LockMode::Exclusive);
  if (!s) return s.error().code() == ReturnCode::InUse;
  (void)(*file)->unlock();
  return false;
}

}  // namespace

Result<VirtualHardDiskState> get_virtual_hard_disk_state(io::Env& access, io::Env& env, Engine& engine,
                                                         const std::string& path, bool busy) {
  VHDKIT_ASSIGN(io::FileIdentity id, check_readable(access, path));
  PinnedEnv pinned(env, path, id);
  VHDKIT_TRY(engine.probe(pinned, path));
  VirtualHardDiskState state;
  {
    VHDKIT_ASSIGN(auto file, pinned.open(path, io::Access::ReadOnly, io::Creation::OpenExisting));
    VHDKIT_ASSIGN(state.file_size, file->size());
  }
  state.in_use = busy || locked_by_another_program(pinned, path);
  if (state.in_use) return state;

  compact::Options dry;
  dry.action = compact::Action::DryRun;
  VHDKIT_ASSIGN(compact::Report report, engine.compact(pinned, path, dry, nullptr));
  state.min_internal_size = report.file_size_after;
  // Blocks the compaction would touch per block holding data; a VHDX can count more (entries that only
  // name space, sector bitmap blocks that move): at most 100.
  state.fragmentation_percentage =
      report.blocks_allocated_before
          ? static_cast<uint32_t>(std::min<uint64_t>(
                100, (report.blocks_released + report.blocks_moved) * 100 / report.blocks_allocated_before))
          : 0;
  disk::OpenOptions options;
  options.parents = disk::ParentPolicy::Optional;
  if (auto image = disk::open_image(pinned, path, options)) {
    state.physical_sector_size = (*image)->info().physical_sector_size;
    if (auto map = (*image)->map()) {
      bool aligned = true;
      for (const auto& e : *map)
        if (e.depth == 0 && e.offset && *e.offset % 4096 != 0) aligned = false;
      state.alignment = aligned ? 1 : 0;
    }
  }
  return state;
}

Result<Validation> validate_virtual_hard_disk(io::Env& access, io::Env& env, const std::string& path) {
  VHDKIT_ASSIGN(io::FileIdentity id, check_readable(access, path));
  PinnedEnv pinned(env, path, id);
  disk::OpenOptions options;
  options.parents = disk::ParentPolicy::Optional;
  Validation v;
  auto image = disk::open_image(pinned, path, options);
  if (!image) {
    // An unsupported format is the caller's mistake; anything else the image's.
    if (image.error().code() == ReturnCode::NotSupported || image.error().code() == ReturnCode::AccessDenied)
      return fail(image.error());
    v.problems.push_back(image.error().message());
    return v;
  }
  v.problems = (*image)->check();
  v.valid = v.problems.empty();
  return v;
}

}  // namespace vhdkit::service
