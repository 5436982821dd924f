// SPDX-License-Identifier: Apache-2.0
#include "exercise.h"
#include "image/open_image.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "compact/compact.h"
#include "disk/virtual_disk.h"

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
  compact::Options dry;
  dry.action = compact::Action::DryRun;
  auto predicted = compact::compact_image(env, path, dry);
  if (!same(*env.bytes(path), *original)) broken("a dry run changed the file");
  // In memory nothing fails for I/O reasons: a refusal (NotSupported, a malformed image) or a compaction;
  // either way the disk must read what it read before.
  auto done = compact::compact_image(env, path, {});
  if (done && predicted && done->file_size_after != predicted->file_size_after)
    broken("the dry run predicted another size than the compaction reached");
  if (before) {
    auto after = content(env, path);
    if (!after) broken("the image no longer opens after a compaction");
    if (!same(*after, *before)) broken("the compaction changed what the disk reads");
  }
}

}  // namespace vhdkit::fuzz
