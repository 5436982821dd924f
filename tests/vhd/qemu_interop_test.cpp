// SPDX-License-Identifier: Apache-2.0
// Images made by qemu-img and qemu-io read back exactly as qemu reads them: size, bytes and map.
#include <gtest/gtest.h>

#include "vhd_test_util.h"

namespace vhdkit::vhd::testing {
namespace {

struct QemuCase {
  std::string name;
  std::string create;               // qemu-img create options and size
  std::vector<std::string> writes;  // qemu-io commands
  bool compare_map = true;
};

void expect_same_as_qemu(const std::string& path, const TempDir& dir, bool compare_map) {
  std::string before = sha256(path);
  auto d = open_ok(path);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->virtual_size(), qemu_virtual_size(path)) << path;
  EXPECT_TRUE(read_all(*d) == qemu_raw_bytes(path, dir)) << "content differs from qemu-img convert: " << path;
  if (compare_map) {
    auto ours = d->map();
    ASSERT_TRUE(ours.has_value());
    auto theirs = qemu_map(path);
    EXPECT_EQ(*ours, theirs) << "ours:\n" << map_text(*ours) << "qemu-img map:\n" << map_text(theirs);
  }
  EXPECT_EQ(d->check(), std::vector<std::string>{}) << path;
  d.reset();
  EXPECT_EQ(sha256(path), before) << "opening and reading changed the file";
}

class QemuMade : public ::testing::TestWithParam<QemuCase> {};

TEST_P(QemuMade, ReadsSizeBytesAndMapLikeQemu) {
  const QemuCase& c = GetParam();
  TempDir dir;
  std::string path = dir.file(c.name + ".vhd");
  run_ok("qemu-img create -q -f vpc " + c.create.substr(0, c.create.rfind(' ')) + " " + q(path) + " " +
         c.create.substr(c.create.rfind(' ') + 1));
  for (const std::string& w : c.writes) run_ok("qemu-io -f vpc -c " + q(w) + " " + q(path));
  expect_same_as_qemu(path, dir, c.compare_map);
}

INSTANTIATE_TEST_SUITE_P(
    Vhd, QemuMade,
    ::testing::Values(QemuCase{"dynamic_64M_chs_rounds",
                               "-o subformat=dynamic 64M",
                               {"write -P 0xab 1M 64k", "write -P 0xcd 5M 3M", "write -P 0x11 67124736 512"}},
                      QemuCase{"dynamic_odd_size",
                               "-o subformat=dynamic 100000000",
                               {"write -P 0x5a 0 4k", "write -P 0x77 33554432 2M", "write -P 0x01 99999744 256"}},
                      QemuCase{"dynamic_force_size",
                               "-o subformat=dynamic,force_size=on 64M",
                               {"write -P 0xab 1M 64k", "write -P 0xef 67043328 65536"}},
                      QemuCase{"dynamic_empty", "-o subformat=dynamic 20M", {}},
                      QemuCase{
                          "fixed_full", "-o subformat=fixed 10M", {"write -P 0x42 0 10514432", "write -P 0x43 2M 4k"}},
                      QemuCase{"fixed_force_size_full", "-o subformat=fixed,force_size=on 6M", {"write -P 0x99 0 6M"}},
                      // A fixed disk with holes: qemu-img map reports the host file's holes as zero, which depends on
                      // the host file system; bytes and size must still agree.
                      QemuCase{"fixed_sparse", "-o subformat=fixed 12M", {"write -P 0xab 1M 64k"}, false}),
    [](const auto& p) { return p.param.name; });

TEST(VhdQemu, ConvertedImageReadsLikeQemu) {
  TempDir dir;
  std::string raw = dir.file("src.raw"), path = dir.file("conv.vhd");
  auto data = pattern(9 << 20, 7);
  std::fill(data.begin() + (2 << 20), data.begin() + (4 << 20), std::byte{0});  // a zero block qemu skips
  write_file(raw, data);
  run_ok("qemu-img convert -f raw -O vpc " + q(raw) + " " + q(path));
  expect_same_as_qemu(path, dir, true);
  auto d = open_ok(path);
  ASSERT_TRUE(d);
  auto all = read_all(*d, 1 << 20);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), all.begin()));
}

}  // namespace
}  // namespace vhdkit::vhd::testing
