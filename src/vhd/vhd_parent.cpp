// Opening an image and following its parent chain: locating the parent from the locators, refusing
// loops, and matching the parent's Unique Id.
#include <fmt/format.h>

#include <filesystem>

#include "vhd/parent_locator.h"
#include "vhd/vhd_image.h"

namespace vhdkit::vhd {

namespace fs = std::filesystem;

// Chains deeper than this are refused: Windows itself stops far earlier, and it bounds the recursion.
constexpr size_t kMaxChainDepth = 64;

static std::string canonical(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? fs::path(path).lexically_normal().string() : p.string();
}

static std::string chain_text(const std::vector<std::string>& paths, const std::string& last) {
  std::string s;
  for (const auto& p : paths) s += p + " -> ";
  return s + last;
}

Result<std::unique_ptr<Image>> Image::open_in_chain(io::Env& env, std::unique_ptr<io::File> file,
                                                    const disk::OpenOptions& options, Chain& chain) {
  Problems problems;
  VHDKIT_ASSIGN(Metadata meta, read_metadata(*file, problems));
  io::Access access = options.access;
  std::unique_ptr<Image> image(new Image(std::move(file), access, std::move(meta)));
  image->open_problems_ = std::move(problems);
  if (image->meta_.type == DiskTypeCode::Differencing && options.parents == disk::ParentPolicy::Skip) {
    image->parent_problem_ = "the parent was not opened";
  } else if (image->meta_.type == DiskTypeCode::Differencing) {
    chain.paths.push_back(canonical(image->path()));
    chain.ids.push_back(image->meta_.footer.unique_id);
    VHDKIT_TRY(image->open_parent(env, options, chain));
  }
  return image;
}

namespace {

struct Candidate {
  std::string path;
  std::string source;  // "W2ru .\parent.vhd"
};

// Where to look, best first: relative locators (they survive moving the pair together), then absolute
// ones, then the Parent Unicode Name (absolute, or its file name beside the child).
std::vector<Candidate> candidates(const Metadata& meta, const std::string& child_path,
                                  std::vector<std::string>& unusable) {
  std::string dir = fs::path(child_path).parent_path().string();
  std::vector<Candidate> out;
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
  if (auto name = std::optional(utf16_to_utf8(meta.header->parent_unicode_name)); !name->empty()) {
    std::string source = fmt::format("Parent Unicode Name {}", *name);
    if (auto abs = host_path_for(kPlatformW2ku, *name, dir)) {
      add(abs, source);
    } else {
      std::string base = *name;
      if (auto cut = base.find_last_of("\\/:"); cut != std::string::npos) base = base.substr(cut + 1);
      add(base.empty() ? std::nullopt : std::optional((fs::path(dir.empty() ? "." : dir) / base).string()),
          source + " (its file name beside the child)");
    }
  }
  return out;
}

}  // namespace

Status Image::open_parent(io::Env& env, const disk::OpenOptions& options, Chain& chain) {
  const DynamicHeader& h = *meta_.header;
  bool require = options.parents == disk::ParentPolicy::Require;
  auto give_up = [&](ReturnCode code, std::string why) -> Status {
    if (require) return fail(code, path(), why);
    parent_problem_ = std::move(why);
    return ok();
  };

  for (const Guid& id : chain.ids)
    if (id == h.parent_unique_id)
      return fail(kCorrupt, path(),
                  fmt::format("the parent chain loops: the parent's Unique Id {} is already in the chain {}",
                              h.parent_unique_id.to_string_be(), chain_text(chain.paths, "...")));
  if (chain.paths.size() >= kMaxChainDepth)
    return fail(kCorrupt, path(), fmt::format("the parent chain is deeper than {} disks", kMaxChainDepth));

  std::vector<std::string> unusable;
  std::vector<Candidate> where = candidates(meta_, path(), unusable);
  const Candidate* found = nullptr;
  for (const Candidate& c : where)
    if (env.exists(c.path)) {
      found = &c;
      break;
    }
  if (!found) {
    std::string looked;
    for (const Candidate& c : where) looked += fmt::format("{}{} (from {})", looked.empty() ? "" : ", ", c.path, c.source);
    for (const std::string& u : unusable) looked += fmt::format("{}{} (names no file on this host)", looked.empty() ? "" : ", ", u);
    parent_path_ = where.empty() ? std::string() : where.front().path;
    return give_up(ReturnCode::FileNotFound,
                   fmt::format("the parent disk of this differencing disk was not found; looked for: {}",
                               looked.empty() ? "nothing (no parent locator or name)" : looked));
  }
  parent_path_ = found->path;
  std::string canon = canonical(found->path);
  for (const std::string& p : chain.paths)
    if (p == canon)
      return fail(kCorrupt, path(), fmt::format("the parent chain loops: {}", chain_text(chain.paths, canon)));

  io::Access access = io::Access::ReadOnly;
  auto file = env.open(found->path, access);
  if (!file) return give_up(file.error().code(), fmt::format("the parent {} cannot be opened: {}", found->path, file.error().message()));
  disk::OpenOptions parent_options = options;
  parent_options.access = access;
  auto parent = open_in_chain(env, std::move(*file), parent_options, chain);
  if (!parent) {
    // A loop found further up is the child's problem too, whatever the policy.
    if (parent.error().message().starts_with("the parent chain loops"))
      return fail(kCorrupt, path(), parent.error().message());
    return give_up(parent.error().code(),
                   fmt::format("the parent {} cannot be used: {}", found->path, parent.error().message()));
  }
  const Guid& actual = (*parent)->footer().unique_id;
  if (actual != h.parent_unique_id)
    return give_up(kCorrupt, fmt::format("the parent {} has Unique Id {}, but this differencing disk expects {}: "
                                         "the parent was replaced or changed",
                                         found->path, actual.to_string_be(), h.parent_unique_id.to_string_be()));
  parent_ = std::move(*parent);
  return ok();
}

}  // namespace vhdkit::vhd
