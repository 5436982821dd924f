// SPDX-License-Identifier: Apache-2.0
#include "compact/format_hooks.h"

#include <array>

#include "compact/raw_compaction.h"
#include "compact/vhd_compaction.h"
#include "compact/vhdx_compaction.h"
#include "image/open_image.h"

namespace vhdkit::compact {
namespace {

struct Hook {
  disk::Format format;
  Status (*check)(disk::VirtualDisk& disk, Mode mode);
  Result<std::unique_ptr<CompactableImage>> (*wrap)(std::unique_ptr<disk::VirtualDisk> disk, Mode mode);
};

constexpr std::array<Hook, 3> kHooks{{
    {disk::Format::Vhd, &vhd::check_compactable, &vhd::make_compactable},
    {disk::Format::Vhdx, &vhdx::check_compactable, &vhdx::make_compactable},
    {disk::Format::Raw, &raw::check_compactable, &raw::make_compactable},
}};

Result<const Hook*> hook_for(disk::VirtualDisk& disk) {
  disk::Format format = disk.info().format;
  for (const Hook& h : kHooks)
    if (h.format == format) return &h;
  return fail(ReturnCode::NotSupported, disk.path(), "no compaction hook for this image format");
}

}  // namespace

Status check_compactable(disk::VirtualDisk& disk, Mode mode) {
  VHDKIT_ASSIGN(const Hook* hook, hook_for(disk));
  return hook->check(disk, mode);
}

Result<std::unique_ptr<CompactableImage>> make_compactable(std::unique_ptr<disk::VirtualDisk> disk, Mode mode) {
  VHDKIT_ASSIGN(const Hook* hook, hook_for(*disk));
  return hook->wrap(std::move(disk), mode);
}

Result<std::unique_ptr<CompactableImage>> open_compactable(io::Env& env, const std::string& path, io::Access access,
                                                           Mode mode) {
  disk::OpenOptions options;
  options.access = access;
  options.lock = access == io::Access::ReadWrite ? disk::Lock::Exclusive : disk::Lock::Shared;
  options.parents = disk::ParentPolicy::Require;  // a differencing disk is judged against its parent
  VHDKIT_ASSIGN(auto disk, image::open_image(env, path, options));
  return make_compactable(std::move(disk), mode);
}

}  // namespace vhdkit::compact
