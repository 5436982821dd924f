// SPDX-License-Identifier: Apache-2.0
#include "cli/batch_scan.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "image/open_image.h"

namespace vhdkit::cli {
namespace {

namespace stdfs = std::filesystem;

// Names Hyper-V and qemu give images: a file so named that the probe cannot place is still a candidate, so
// that a damaged image shows up in the report as failed instead of vanishing from it.
bool named_like_an_image(const stdfs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".vhd" || ext == ".vhdx" || ext == ".avhd" || ext == ".avhdx";
}

bool inside(const stdfs::path& candidate, const stdfs::path& root) {
  auto [r, c] = std::mismatch(root.begin(), root.end(), candidate.begin(), candidate.end());
  return r == root.end();
}

class Scanner {
 public:
  Scanner(io::Env& env, Symlinks symlinks) : env_(env), symlinks_(symlinks) {}

  // Named: a path the user gave, compacted whatever its name (the compaction judges it); Found: met in a
  // folder, kept only when it looks like an image.
  enum class Origin { Named, Found };

  void add_file(const std::string& path, Origin origin = Origin::Found) {
    auto file = env_.open(path, io::Access::ReadOnly, io::Creation::OpenExisting);
    if (!file) {
      // A path the user named goes on to the compaction, which fails it with the reference's code (32779 not
      // found, 32769 access denied); one met in a folder that names an image is reported skipped.
      if (origin == Origin::Named) {
        out_.images.push_back(BatchImage{path, "unknown", {}, {}, 0});
      } else if (named_like_an_image(path)) {
        out_.skipped.push_back({path, fmt::format("cannot be opened: {}", file.error().what())});
      }
      return;
    }
    auto format = image::detect_format(**file);
    bool image = format && *format != disk::Format::Raw;
    if (!image && !named_like_an_image(path) && origin == Origin::Found) return;
    BatchImage found;
    found.path = path;
    found.format = image ? std::string(disk::to_string(*format)) : "unknown";
    auto id = (*file)->identity();
    auto size = (*file)->size();
    if (!id || !size) {
      out_.skipped.push_back({path, "cannot be examined (fstat failed)"});
      return;
    }
    found.identity = *id;
    found.size = *size;
    for (const auto& seen : out_.images) {
      if (seen.identity.inode != 0 && seen.identity.same_file(found.identity)) {
        out_.skipped.push_back({path, fmt::format("the same file as {} (one job per physical file)", seen.path)});
        return;
      }
    }
    found.chain.push_back(found.identity);
    file->reset();
    if (image) add_parents(found);
    out_.images.push_back(std::move(found));
  }

  void add_tree(const stdfs::path& root) {
    std::error_code ec;
    stdfs::path canonical_root = stdfs::canonical(root, ec);
    if (ec) {
      out_.errors.push_back(fmt::format("{}: {}", root.string(), ec.message()));
      return;
    }
    auto options = stdfs::directory_options::skip_permission_denied;
    if (symlinks_ == Symlinks::Follow) options |= stdfs::directory_options::follow_directory_symlink;
    stdfs::recursive_directory_iterator it(root, options, ec), end;
    if (ec) {
      out_.errors.push_back(fmt::format("{}: {}", root.string(), ec.message()));
      return;
    }
    std::vector<std::string> files;
    for (; it != end; it.increment(ec)) {
      if (ec) {
        out_.errors.push_back(fmt::format("{}: {}", it->path().string(), ec.message()));
        ec.clear();
        continue;
      }
      // A followed folder link may lead into a loop; no real tree of images is this deep.
      if (it.depth() > 64) {
        it.disable_recursion_pending();
        continue;
      }
      const stdfs::path& p = it->path();
      if (it->is_symlink(ec)) {
        stdfs::path target = stdfs::canonical(p, ec);
        if (ec) {
          if (named_like_an_image(p)) out_.skipped.push_back({p.string(), "a symbolic link that leads nowhere"});
          ec.clear();
          continue;
        }
        if (!inside(target, canonical_root) && symlinks_ == Symlinks::StayInTree) {
          if (stdfs::is_regular_file(target, ec))
            out_.skipped.push_back({p.string(), fmt::format("a symbolic link to {}, outside the tree "
                                                            "(--follow-symlinks includes it)",
                                                            target.string())});
          ec.clear();
          continue;
        }
      }
      if (it->is_regular_file(ec)) files.push_back(p.string());
      ec.clear();
    }
    // Walk order depends on the folder; a sorted list makes runs and reports repeatable.
    std::sort(files.begin(), files.end());
    for (const auto& f : files) add_file(f);
  }

  void error(std::string text) { out_.errors.push_back(std::move(text)); }
  BatchScan take() { return std::move(out_); }

 private:
  // The parents an image names, read-only and unlocked: the walk only learns which files the job will read.
  void add_parents(BatchImage& found) {
    disk::OpenOptions o;
    o.parents = disk::ParentPolicy::Optional;
    auto opened = image::open_image(env_, found.path, o);
    if (!opened) return;
    for (disk::VirtualDisk* p = (*opened)->parent(); p; p = p->parent()) {
      auto id = p->file().identity();
      if (id) found.chain.push_back(*id);
    }
  }

  io::Env& env_;
  Symlinks symlinks_;
  BatchScan out_;
};

}  // namespace

BatchScan scan_images(io::Env& env, const std::vector<std::string>& roots, Recursion recursion, Symlinks symlinks) {
  Scanner scanner(env, symlinks);
  for (const auto& root : roots) {
    std::error_code ec;
    if (stdfs::is_directory(root, ec)) {
      if (recursion == Recursion::On) {
        scanner.add_tree(root);
      } else {
        scanner.error(fmt::format("{}: is a folder; add --recursive to compact the images in it", root));
      }
    } else {
      scanner.add_file(root, Scanner::Origin::Named);
    }
  }
  return scanner.take();
}

bool share_a_file(const BatchImage& a, const BatchImage& b) {
  auto in = [](const io::FileIdentity& id, const std::vector<io::FileIdentity>& chain) {
    return std::any_of(chain.begin(), chain.end(), [&](const io::FileIdentity& c) { return c.same_file(id); });
  };
  return in(a.identity, b.chain) || in(b.identity, a.chain);
}

}  // namespace vhdkit::cli
