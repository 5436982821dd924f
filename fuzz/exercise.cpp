// SPDX-License-Identifier: Apache-2.0
#include "exercise.h"
#include "image/open_image.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "compact/compact.h"
#include "disk/virtual_disk.h"
#include "fs/usage_map.h"

namespace vhdkit::fuzz {
namespace {

// Disks larger than this are only opened, checked and mapped: reading them whole would make each run slow.
constexpr uint64_t kMaxReadSize = 16 << 20;

// Byte for byte, with memcmp (not traced comparison by comparison: files are megabytes).
template <class A, class B>
bool same(const A& a, const B& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

[[noreturn]] void broken(const char* promise) {
  std::fprintf(stderr, "fuzz: broken promise: %s\n", promise);
  std::abort();
}

std::unique_ptr<disk::VirtualDisk> open(io::MemEnv& env, const std::string& path, disk::ParentPolicy parents) {
  disk::OpenOptions options;
  options.parents = parents;
  auto d = image::open_image(env, path, options);
  return d ? std::move(*d) : nullptr;
}

std::optional<std::vector<std::byte>> content(io::MemEnv& env, const std::string& path) {
  auto d = open(env, path, disk::ParentPolicy::Require);
  if (!d || d->virtual_size() > kMaxReadSize) return std::nullopt;
  std::vector<std::byte> bytes(d->virtual_size());
  if (!d->read(0, bytes)) return std::nullopt;
  return bytes;
}

// What the file systems use, as Full must keep it (nothing when the disk does not open).
std::optional<std::vector<fs::ByteRange>> used_ranges(io::MemEnv& env, const std::string& path) {
  auto d = open(env, path, disk::ParentPolicy::Require);
  if (!d || d->virtual_size() > kMaxReadSize) return std::nullopt;
  auto m = fs::map_usage(*d);
  if (!m) return std::nullopt;
  return m->used;
}

}  // namespace

void exercise(io::MemEnv& env, const std::string& path) {
  const auto original = env.bytes(path);
  {
    auto d = open(env, path, disk::ParentPolicy::Optional);
    if (!d) return;  // refused: the error named the problem, and the file must be untouched (below)
    (void)d->info();
    (void)d->check();
    (void)d->map();
    std::vector<std::byte> buf(64 << 10);
    const uint64_t size = d->virtual_size();
    for (uint64_t at : {uint64_t{0}, size / 2, size > buf.size() ? size - buf.size() : 0}) {
      if (at + buf.size() <= size) (void)d->read(at, buf);
    }
  }
  if (!same(*env.bytes(path), *original)) broken("a read-only open changed the file");

  const auto before = content(env, path);
  const auto used = used_ranges(env, path);
  // Prezeroed first: the disk must read exactly what it read before.
  compact::Options prezeroed;
  prezeroed.mode = compact::Mode::Prezeroed;
  (void)compact::compact_image(env, path, prezeroed);
  if (before) {
    auto after = content(env, path);
    if (!after) broken("the image no longer opens after a compaction");
    if (!same(*after, *before)) broken("the compaction changed what the disk reads");
  }
  // Then Full: the dry run predicts the run, and every range the file systems used reads as before.
  compact::Options dry;
  dry.action = compact::Action::DryRun;
  const auto unchanged = env.bytes(path);
  auto predicted = compact::compact_image(env, path, dry);
  if (!same(*env.bytes(path), *unchanged)) broken("a dry run changed the file");
  // In memory nothing fails for I/O reasons: a refusal (NotSupported, a malformed image) or a compaction.
  auto done = compact::compact_image(env, path, {});
  if (done && predicted && done->file_size_after != predicted->file_size_after)
    broken("the dry run predicted another size than the compaction reached");
  if (before && used) {
    auto after = content(env, path);
    if (!after) broken("the image no longer opens after a Full compaction");
    if (after->size() != before->size()) broken("a Full compaction changed the disk's size");
    for (const fs::ByteRange& r : *used) {
      if (r.end() > before->size() || std::memcmp(after->data() + r.offset, before->data() + r.offset, r.length) != 0)
        broken("a Full compaction changed bytes a file system uses");
    }
  }
}

}  // namespace vhdkit::fuzz
