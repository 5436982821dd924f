// SPDX-License-Identifier: Apache-2.0
// A VHD's link adapter for the one parent-chain resolver (disk/parent_chain.h): where the locators say the
// parent is, and whether the parent found carries the Unique Id the child recorded.
#include <fmt/format.h>

#include <filesystem>

#include "vhd/parent_locator.h"
#include "vhd/vhd_image.h"

namespace vhdkit::vhd {

namespace fs = std::filesystem;

Result<std::unique_ptr<Image>> Image::open_in_chain(io::Env& env, std::unique_ptr<io::File> file,
                                                    const disk::OpenOptions& options, Chain& chain) {
  VHDKIT_TRY(chain.enter(env, *file));
  Problems problems;
  VHDKIT_ASSIGN(Metadata meta, read_metadata(*file, problems));
  io::Access access = options.access;
  std::unique_ptr<Image> image(new Image(std::move(file), access, std::move(meta)));
  image->open_problems_ = std::move(problems);
  if (image->meta_.type == DiskTypeCode::Differencing && options.parents == disk::ParentPolicy::Skip) {
    image->parent_problem_ = "the parent was not opened";
  } else if (image->meta_.type == DiskTypeCode::Differencing) {
    VHDKIT_TRY(image->open_parent(env, options, chain));
  }
  return image;
}

namespace {

// Where to look, best first: relative locators (they survive moving the pair together), then absolute
// ones, then the Parent Unicode Name (absolute, or its file name beside the child).
std::vector<disk::ParentCandidate> candidates(const Metadata& meta, const std::string& child_path,
                                              std::vector<std::string>& unusable) {
  std::string dir = fs::path(child_path).parent_path().string();
  std::vector<disk::ParentCandidate> out;
  auto add = [&](std::optional<std::string> p, std::string source) {
    if (!p) {
      unusable.push_back(source);
      return;
    }
    for (const auto& c : out)
      if (c.path == *p) return;
    out.push_back({*p, std::move(source)});
  };
  for (uint32_t code : {kPlatformW2ru, kPlatformWi2r, kPlatformW2ku, kPlatformWi2k, kPlatformMacX})
    for (const LocatorText& l : meta.locators)
      if (l.platform_code == code)
        add(host_path_for(code, l.text, dir), fmt::format("locator {} {}", fourcc_text(code), l.text));
  if (std::string name = utf16_to_utf8(meta.header->parent_unicode_name); !name.empty()) {
    std::string source = fmt::format("Parent Unicode Name {}", name);
    if (auto abs = host_path_for(kPlatformW2ku, name, dir)) {
      add(abs, source);
    } else {
      std::string base = name;
      if (auto cut = base.find_last_of("\\/:"); cut != std::string::npos) base = base.substr(cut + 1);
      add(base.empty() ? std::nullopt : std::optional((fs::path(dir.empty() ? "." : dir) / base).string()),
          source + " (its file name beside the child)");
    }
  }
  return out;
}

}  // namespace

Status Image::open_parent(io::Env& env, const disk::OpenOptions& options, Chain& chain) {
  const Guid expected = meta_.header->parent_unique_id;
  disk::ParentLink link;
  link.candidates = candidates(meta_, path(), link.unusable);
  link.open = [&](std::unique_ptr<io::File> file, Chain& c) -> Result<std::unique_ptr<disk::VirtualDisk>> {
    disk::OpenOptions parent_options = options;
    parent_options.access = io::Access::ReadOnly;
    VHDKIT_ASSIGN(auto parent, open_in_chain(env, std::move(file), parent_options, c));
    return std::unique_ptr<disk::VirtualDisk>(std::move(parent));
  };
  link.mismatch = [&](disk::VirtualDisk& parent, const std::string& parent_path) -> std::optional<std::string> {
    const Guid& actual = static_cast<Image&>(parent).footer().unique_id;
    if (actual == expected) return std::nullopt;
    return fmt::format(
        "the parent {} has Unique Id {}, but this differencing disk expects {}: the parent was "
        "replaced or changed",
        parent_path, actual.to_string_be(), expected.to_string_be());
  };
  VHDKIT_ASSIGN(disk::ResolvedParent resolved, disk::resolve_parent(env, path(), link, options.parents, chain));
  parent_path_ = resolved.path;
  parent_problem_ = std::move(resolved.problem);
  parent_.reset(static_cast<Image*>(resolved.disk.release()));
  return ok();
}

}  // namespace vhdkit::vhd
