// SPDX-License-Identifier: Apache-2.0
// The real images in ../shared/fixtures (SOURCES.md): each opens and reads as qemu-img and vhdiinfo do,
// and the damaged ones fail with a clear message. None is ever changed.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "image/open_image.h"
#include "vhd_test_util.h"

namespace vhdkit::vhd::testing {
namespace {

// Compares every byte with qemu-img convert's, streaming (some fixtures are hundreds of MiB).
void expect_bytes_like_qemu(disk::VirtualDisk& d, const std::string& path, const TempDir& dir) {
  std::string raw = dir.file("qemu.raw");
  run_ok("qemu-img convert -U -f vpc -O raw " + q(path) + " " + q(raw));
  auto f = io::Env::posix().open(raw, io::Access::ReadOnly);
  ASSERT_TRUE(f);
  auto size = (*f)->size();
  ASSERT_TRUE(size);
  ASSERT_EQ(*size, d.virtual_size());
  std::vector<std::byte> a(4 << 20), b(4 << 20);
  for (uint64_t off = 0; off < *size; off += a.size()) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(a.size(), *size - off));
    ASSERT_TRUE(d.read(off, std::span(a).first(n)));
    ASSERT_TRUE((*f)->read_at(off, std::span(b).first(n)));
    ASSERT_TRUE(std::equal(a.begin(), a.begin() + static_cast<ptrdiff_t>(n), b.begin())) << "at offset " << off;
  }
  run_ok("rm -f " + q(raw));
}

uint64_t vhdiinfo_size(const std::string& path) {
  std::string out = run_ok("vhdiinfo " + q(path));
  auto at = out.find("Media size");
  auto open = out.find('(', at), close = out.find(" bytes)", at);
  return std::stoull(out.substr(open + 1, close - open - 1));
}

struct Fixture {
  std::string name;
  uint64_t virtual_size;
  disk::DiskType type;
  uint64_t blocks_allocated;
  bool read_everything;  // false for the 127 GiB empty ones (their map proves them empty)
};

class Fixtures : public ::testing::TestWithParam<Fixture> {};

TEST_P(Fixtures, OpenReadAndMapLikeQemu) {
  VHDKIT_NEEDS_FIXTURES();
  const Fixture& fx = GetParam();
  TempDir dir;
  std::string path = expand_fixture(fx.name, dir);
  std::string before = sha256(path);
  auto d = open_ok(path);
  ASSERT_TRUE(d);
  disk::DiskInfo info = d->info();
  EXPECT_EQ(info.format, disk::Format::Vhd);
  EXPECT_EQ(info.type, fx.type);
  EXPECT_EQ(d->virtual_size(), fx.virtual_size);
  EXPECT_EQ(d->virtual_size(), qemu_virtual_size(path));
  EXPECT_EQ(info.blocks_allocated, fx.blocks_allocated);
  if (fx.read_everything) expect_bytes_like_qemu(*d, path, dir);
  if (fx.type != disk::DiskType::Fixed) {
    auto ours = d->map();
    ASSERT_TRUE(ours);
    auto theirs = qemu_map(path);
    EXPECT_EQ(*ours, theirs) << map_text(*ours) << "qemu:\n" << map_text(theirs);
  }
  EXPECT_EQ(d->check(), std::vector<std::string>{});
  d.reset();
  EXPECT_EQ(sha256(path), before);
}

INSTANTIATE_TEST_SUITE_P(
    Vhd, Fixtures,
    ::testing::Values(
        Fixture{"dissect.hypervisor/dynamic.vhd.gz", 10485760, disk::DiskType::Dynamic, 3, true},
        Fixture{"dissect.hypervisor/fixed.vhd.gz", 10485760, disk::DiskType::Fixed, 0, true},
        Fixture{"dfvfs/ext2.vhd.gz", 4212736, disk::DiskType::Dynamic, 1, true},
        Fixture{"qemu-iotests/d2v-zerofilled.vhd.bz2", 263454720, disk::DiskType::Dynamic, 126, true},
        Fixture{"qemu-iotests/hyperv2012r2-dynamic.vhd.bz2", 136365211648, disk::DiskType::Dynamic, 0, false},
        Fixture{"qemu-iotests/virtualpc-dynamic.vhd.bz2", 136363130880, disk::DiskType::Dynamic, 0, false}),
    [](const auto& p) {
      std::string n = p.param.name.substr(p.param.name.find('/') + 1);
      n = n.substr(0, n.find('.'));
      for (char& c : n)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      return n;
    });

TEST(VhdFixtures, WindowsMadeSizesAgreeWithVhdiinfo) {
  VHDKIT_NEEDS_FIXTURES();
  TempDir dir;
  for (const char* name : {"dissect.hypervisor/dynamic.vhd.gz", "dissect.hypervisor/fixed.vhd.gz",
                           "qemu-iotests/hyperv2012r2-dynamic.vhd.bz2", "dfvfs/fat-differential.vhd.gz"}) {
    std::string path = expand_fixture(name, dir);
    disk::OpenOptions o;
    o.parents = disk::ParentPolicy::Optional;
    auto d = open_ok(path, o);
    ASSERT_TRUE(d) << name;
    EXPECT_EQ(d->virtual_size(), vhdiinfo_size(path)) << name;
  }
}

TEST(VhdFixtures, DifferencingWithMissingParentFailsWithRequireAndOpensWithOptional) {
  VHDKIT_NEEDS_FIXTURES();
  TempDir dir;
  std::string path = expand_fixture("dfvfs/fat-differential.vhd.gz", dir);
  std::string before = sha256(path);
  auto r = image::open_image(io::Env::posix(), path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ReturnCode::FileNotFound);
  EXPECT_NE(r.error().message().find("parent"), std::string::npos) << r.error().what();
  EXPECT_NE(r.error().message().find("fat-parent.vhd"), std::string::npos) << r.error().what();
  EXPECT_NE(r.error().message().find("C:\\Projects"), std::string::npos) << r.error().what();

  disk::OpenOptions o;
  o.parents = disk::ParentPolicy::Optional;
  auto d = open_ok(path, o);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->info().type, disk::DiskType::Differencing);
  EXPECT_EQ(d->virtual_size(), 4194304u);
  EXPECT_EQ(d->parent(), nullptr);
  EXPECT_EQ(d->info().blocks_allocated, 1u);
  ASSERT_TRUE(d->info().parent_path.has_value());
  EXPECT_NE(d->info().parent_path->find("fat-parent.vhd"), std::string::npos);
  auto problems = d->check();
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems.front().find("not found"), std::string::npos) << problems.front();
  // Block 1 is not allocated: reading it falls through to the missing parent and fails, clearly.
  std::vector<std::byte> buf(4096);
  auto fell = d->read(3 << 20, buf);
  ASSERT_FALSE(fell);
  EXPECT_NE(fell.error().message().find("parent"), std::string::npos) << fell.error().what();
  // The map says where the parent would be needed.
  auto map = d->map();
  ASSERT_TRUE(map);
  EXPECT_TRUE(std::any_of(map->begin(), map->end(), [](const auto& e) { return e.depth == 1 && !e.present; }));
  d.reset();
  EXPECT_EQ(sha256(path), before);
}

TEST(VhdFixtures, BadChecksumsAreRefusedClearly) {
  VHDKIT_NEEDS_FIXTURES();
  TempDir dir;
  for (const char* name : {"dfvfs/image.vhd.gz", "dfvfs/image-differential.vhd.gz"}) {
    std::string path = expand_fixture(name, dir);
    std::string before = sha256(path);
    for (auto access : {io::Access::ReadOnly, io::Access::ReadWrite}) {
      disk::OpenOptions o;
      o.access = access;
      o.parents = disk::ParentPolicy::Optional;
      auto r = image::open_image(io::Env::posix(), path, o);
      ASSERT_FALSE(r) << name;
      EXPECT_NE(r.error().message().find("footer checksum is wrong"), std::string::npos) << r.error().what();
    }
    EXPECT_EQ(sha256(path), before) << name;
  }
}

}  // namespace
}  // namespace vhdkit::vhd::testing
