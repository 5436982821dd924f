// SPDX-License-Identifier: Apache-2.0
// image::compare_contents: first differing byte, size rules, and that ranges both maps call zero are
// never read (what makes comparing two empty 127 GiB disks instant).
#include <gtest/gtest.h>

#include <cstring>

#include "image/compare.h"

namespace vhdkit::image {
using namespace disk;
namespace {

// A virtual disk whose bytes are `bytes` followed by zeros up to `size`, with the map it is given;
// it counts what is read from it.
class FakeDisk final : public VirtualDisk {
 public:
  FakeDisk(uint64_t size, std::vector<std::byte> bytes, std::vector<MapExtent> map)
      : size_(size), bytes_(std::move(bytes)), map_(std::move(map)) {}

  const std::string& path() const override { return path_; }
  DiskInfo info() const override { return {}; }
  uint64_t virtual_size() const override { return size_; }
  Status read(uint64_t offset, std::span<std::byte> buf) override {
    if (fail_reads) return fail(ReturnCode::Failed, path_, "injected read error");
    if (offset + buf.size() > size_) return fail(ReturnCode::InvalidParameter, path_, "read past the end");
    bytes_read += buf.size();
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = offset + i < bytes_.size() ? bytes_[offset + i] : std::byte{0};
    return ok();
  }
  Status write(uint64_t, std::span<const std::byte>) override { return fail(ReturnCode::InvalidState, path_, "ro"); }
  Status flush() override { return ok(); }
  Result<std::vector<MapExtent>> map() override { return map_; }
  std::vector<std::string> check() override { return {}; }
  VirtualDisk* parent() override { return nullptr; }
  io::File& file() override { std::abort(); }

  uint64_t bytes_read = 0;
  bool fail_reads = false;

 private:
  std::string path_ = "fake";
  uint64_t size_;
  std::vector<std::byte> bytes_;
  std::vector<MapExtent> map_;
};

MapExtent data(uint64_t start, uint64_t length) { return {start, length, 0, true, false, true, start}; }
MapExtent zero(uint64_t start, uint64_t length) { return {start, length, 0, true, true, false, std::nullopt}; }

std::vector<std::byte> pattern(size_t n, uint8_t seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::byte(static_cast<uint8_t>(i * 31 + seed) | 1);
  return v;
}

constexpr uint64_t MiB = 1 << 20;

TEST(Compare, EmptyHugeDisksAreEqualWithoutReadingAByte) {
  const uint64_t size = 127ull << 30;
  FakeDisk a(size, {}, {zero(0, size)}), b(size, {}, {zero(0, 64ull << 30), zero(64ull << 30, size - (64ull << 30))});
  auto r = compare_contents(a, b);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_TRUE(r->equal);
  EXPECT_FALSE(r->sizes_differ);
  EXPECT_EQ(a.bytes_read + b.bytes_read, 0u);
}

TEST(Compare, FindsTheExactFirstDifferingByteAcrossChunks) {
  auto bytes = pattern(12 * MiB, 3);
  for (uint64_t at : {uint64_t{0}, uint64_t{4999}, 4 * MiB + 1, 12 * MiB - 1}) {
    auto other = bytes;
    other[at] ^= std::byte{0x40};
    FakeDisk a(12 * MiB, bytes, {data(0, 12 * MiB)}), b(12 * MiB, other, {data(0, 12 * MiB)});
    auto r = compare_contents(a, b);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->equal);
    EXPECT_EQ(r->first_difference, at);
  }
}

TEST(Compare, ReadsOnlyTheSideThatHasDataWhereTheOtherIsZero) {
  // a: data in [2 MiB, 4 MiB) that happens to be zeros; b: all zero by its map.
  FakeDisk a(8 * MiB, {}, {zero(0, 2 * MiB), data(2 * MiB, 2 * MiB), zero(4 * MiB, 4 * MiB)});
  FakeDisk b(8 * MiB, {}, {zero(0, 8 * MiB)});
  auto r = compare_contents(a, b);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->equal);
  EXPECT_EQ(a.bytes_read, 2 * MiB);
  EXPECT_EQ(b.bytes_read, 0u);
  // The same, with a non-zero byte in a's data: that byte is the difference.
  std::vector<std::byte> bytes(3 * MiB);
  bytes[3 * MiB - 10] = std::byte{7};
  FakeDisk c(8 * MiB, bytes, {zero(0, 2 * MiB), data(2 * MiB, 2 * MiB), zero(4 * MiB, 4 * MiB)});
  auto d = compare_contents(b, c);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->equal);
  EXPECT_EQ(d->first_difference, 3 * MiB - 10);
}

TEST(Compare, DifferentSizesCompareTheTailAgainstZeros) {
  auto bytes = pattern(MiB, 9);
  FakeDisk small(MiB, bytes, {data(0, MiB)});
  FakeDisk large_zero_tail(3 * MiB, bytes, {data(0, 3 * MiB)});
  auto r = compare_contents(small, large_zero_tail);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->equal);
  EXPECT_TRUE(r->sizes_differ);

  auto longer = bytes;
  longer.resize(2 * MiB + 5);
  longer[2 * MiB + 4] = std::byte{1};
  FakeDisk large(3 * MiB, longer, {data(0, 3 * MiB)});
  r = compare_contents(large, small);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->equal);
  EXPECT_EQ(r->first_difference, 2 * MiB + 4);

  r = compare_contents(small, large_zero_tail, SizeRule::Strict);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->equal);
  EXPECT_EQ(r->first_difference, MiB);
}

TEST(Compare, ReadErrorsAreErrorsNotDifferences) {
  FakeDisk a(MiB, pattern(MiB, 1), {data(0, MiB)}), b(MiB, pattern(MiB, 1), {data(0, MiB)});
  b.fail_reads = true;
  auto r = compare_contents(a, b);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("injected"), std::string::npos);
}

}  // namespace
}  // namespace vhdkit::image
