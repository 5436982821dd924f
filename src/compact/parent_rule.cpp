// SPDX-License-Identifier: Apache-2.0
#include "compact/parent_rule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/guid.h"
#include "image/open_image.h"
#include "vhd/vhd_image.h"
#include "vhdx/vhdx_disk.h"

namespace vhdkit::compact {
namespace {

// What a child records of its parent, and what a parent is known by: the VHD Unique Id, the VHDX
// DataWriteGuid. The format is part of the identity: a VHD child never names a VHDX.
struct LinkId {
  disk::Format format = disk::Format::Raw;
  Guid id;
  bool operator==(const LinkId&) const = default;
};

std::optional<LinkId> own_id(disk::VirtualDisk& d) {
  if (auto* vhd = dynamic_cast<vhd::Image*>(&d)) return LinkId{disk::Format::Vhd, vhd->footer().unique_id};
  if (auto* vhdx = vhdx::image_of(d)) return LinkId{disk::Format::Vhdx, vhdx->header().data_write_guid};
  return std::nullopt;
}

// Every parent identity the child names (a VHDX may carry parent_linkage2 beside parent_linkage).
std::vector<LinkId> parent_ids(disk::VirtualDisk& d) {
  std::vector<LinkId> out;
  if (auto* vhd = dynamic_cast<vhd::Image*>(&d)) {
    if (vhd->type() == disk::DiskType::Differencing && vhd->dynamic_header())
      out.push_back({disk::Format::Vhd, vhd->dynamic_header()->parent_unique_id});
  } else if (auto* vhdx = vhdx::image_of(d)) {
    const vhdx::Metadata& m = vhdx->metadata();
    if (m.has_parent && m.parent_locator) {
      for (const char* key : {"parent_linkage", "parent_linkage2"})
        if (auto text = m.parent_locator->get(key))
          if (auto g = Guid::parse_ms(*text)) out.push_back({disk::Format::Vhdx, *g});
    }
  }
  return out;
}

const char* mode_name(Mode m) { return m == Mode::Full ? "Full" : m == Mode::Quick ? "Quick" : "Retrim"; }

bool named_like_an_image(const std::string& name) {
  std::string ext = std::filesystem::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".vhd" || ext == ".vhdx" || ext == ".avhd" || ext == ".avhdx";
}

}  // namespace

Result<std::optional<std::string>> child_beside(io::Env& env, disk::VirtualDisk& disk) {
  std::optional<LinkId> me = own_id(disk);
  if (!me || me->id.is_zero()) return std::nullopt;
  const std::filesystem::path self(disk.path());
  const std::string folder = io::directory_of(disk.path());
  VHDKIT_ASSIGN(std::vector<std::string> names, env.list_files(folder));
  for (const std::string& name : names) {
    if (name == self.filename().string() || !named_like_an_image(name)) continue;
    const std::string candidate = (std::filesystem::path(folder) / name).string();
    disk::OpenOptions o;
    o.access = io::Access::ReadOnly;
    o.parents = disk::ParentPolicy::Skip;
    o.lock = disk::Lock::None;
    auto child = image::open_image(env, candidate, o);
    // A sibling that a writer holds (another compaction in the same folder) may be read half-written: that
    // doubt is "in use, try again", not a damaged file. (Only asked after a failed read, so that no lock of
    // ours ever stands in a writer's way.)
    auto held_by_a_writer = [&] {
      disk::OpenOptions probe = o;
      probe.lock = disk::Lock::Shared;
      auto again = image::open_image(env, candidate, probe);
      return !again && again.error().code() == ReturnCode::InUse;
    };
    if (!child && held_by_a_writer()) {
      return fail(ReturnCode::InUse, disk.path(),
                  fmt::format("{} beside it is being written by another program, so whether it is a differencing "
                              "disk of this one cannot be told now; try again when it is done (or use --mode "
                              "prezeroed)",
                              candidate));
    }
    if (!child) {
      // A file that is no image opens as raw; this one looks like a VHD or VHDX yet cannot be read (damaged, or
      // an I/O error): it may be a child, so the doubt refuses.
      const Error& e = child.error();
      return fail(e.code(), disk.path(),
                  fmt::format("cannot tell whether {} is a differencing disk of this one: {}; Full and Quick "
                              "must not run on a parent (use --mode prezeroed)",
                              candidate, e.message()));
    }
    std::vector<LinkId> ids = parent_ids(**child);
    if (std::find(ids.begin(), ids.end(), *me) != ids.end()) return candidate;
  }
  return std::nullopt;
}

Status check_parent_rule(io::Env& env, disk::VirtualDisk& disk, const Options& options) {
  // Retrim too: its holes over unused bytes change what they read.
  if (options.mode != Mode::Full && options.mode != Mode::Quick && options.mode != Mode::Retrim) return ok();
  std::string why;
  if (options.parent_of_children == ParentOfChildren::Declared) {
    why = "you said it is the parent of differencing disks";
  } else {
    VHDKIT_ASSIGN(std::optional<std::string> child, child_beside(env, disk));
    if (!child) return ok();
    why = fmt::format("it is the parent of the differencing disk {}", *child);
  }
  return fail(ReturnCode::InvalidState, disk.path(),
              fmt::format("{} cannot run on this disk: {}. {} changes what the unused parts of the disk read{}, so "
                          "its children would read changed data; use --mode prezeroed (Mode 4), which keeps the "
                          "content and is safe for parents",
                          mode_name(options.mode), why, mode_name(options.mode),
                          disk.info().format == disk::Format::Vhdx ? " and gives the VHDX a new DataWriteGuid" : ""));
}

}  // namespace vhdkit::compact
