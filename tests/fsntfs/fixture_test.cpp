// SPDX-License-Identifier: Apache-2.0
// The real images that hold NTFS (dissect.hypervisor's dynamic.vhd and dynamic.vhdx, made on Windows: an
// MBR partition of 7 MiB): the volume is read, our used clusters equal ntfsinfo's, and after Full the
// partition reads the same on every used range, ntfsfix -n says exactly what it said before, and the
// files (listed and checksummed through an ntfs-3g -o ro mount) are the same.
#include <gtest/gtest.h>

#include <filesystem>

#include "compact/compact.h"
#include "compact_checks.h"
#include "fs/ranges.h"
#include "windows_disk.h"

namespace vhdkit::testing {
namespace {

// ntfsfix -n's report (clean) and every file's checksum, as one text.
std::string volume_state(const std::string& part) {
  RunResult fix = run("ntfsfix -n " + q(part) + " 2>&1");
  EXPECT_EQ(fix.status, 0) << fix.out;
  std::string out = fix.out;
  for (size_t at; (at = out.find(part)) != std::string::npos;) out.replace(at, part.size(), "PART");
  std::string mnt = part + ".mnt";
  std::filesystem::create_directories(mnt);
  run_ok("ntfs-3g -o ro " + q(part) + " " + q(mnt));
  out += run("cd " + q(mnt) + " && find . -type f -print0 | sort -z | xargs -0 -r sha256sum").out;
  run("umount " + q(mnt) + " || umount -l " + q(mnt));
  return out;
}

class NtfsFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(NtfsFixture, ReadAndFullKeepsTheVolume) {
  VHDKIT_NEEDS_FIXTURES();
  TempDir dir;
  const std::string image = expand_fixture(GetParam(), dir);
  const std::string raw = qemu_raw(image, dir, "before.raw");
  vhdkit::fs::UsageMap map = map_raw(raw);
  ASSERT_EQ(map.volumes.size(), 1u);
  const vhdkit::fs::Volume& v = map.volumes[0];
  EXPECT_EQ(v.table, "mbr");
  EXPECT_EQ(v.filesystem, "ntfs");
  ASSERT_EQ(v.state, vhdkit::fs::Volume::State::Read) << v.reason;
  const std::string part = extract(dir, raw, v.offset, v.size, "before.part");
  ToolCount c = ntfs_tool_count(part);
  // The volume starts inside the first MiB, which is always kept: count from the MiB on.
  const uint64_t lo = std::max<uint64_t>(v.offset, kMiB), hi = v.offset + c.clusters * c.cluster;
  EXPECT_LE(vhdkit::fs::detail::covered_bytes(map.used, lo, hi), c.used_clusters * c.cluster);
  EXPECT_EQ(vhdkit::fs::detail::covered_bytes(map.used, v.offset, v.offset + v.size),
            (lo - v.offset) + vhdkit::fs::detail::covered_bytes(map.used, lo, hi) + (v.offset + v.size - hi));
  const std::string before = volume_state(part);

  compact::Options o;
  o.mode = compact::Mode::Full;
  compact::Report r = compact_ok(image, o);
  ASSERT_EQ(r.volumes.size(), 1u);
  EXPECT_EQ(r.volumes[0].state, "read") << r.volumes[0].reason;
  const std::string after_raw = qemu_raw(image, dir, "after.raw");
  uint64_t differing = 0;
  for (const vhdkit::fs::ByteRange& u : map.used)
    if (file_bytes(after_raw, u.offset, u.length) != file_bytes(raw, u.offset, u.length)) ++differing;
  EXPECT_EQ(differing, 0u);
  EXPECT_EQ(volume_state(extract(dir, after_raw, v.offset, v.size, "after.part")), before);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, NtfsFixture,
                         ::testing::Values("dissect.hypervisor/dynamic.vhd.gz", "dissect.hypervisor/dynamic.vhdx.gz"),
                         [](const auto& test) {
                           return test.param.find("vhdx") != std::string::npos ? "vhdx" : "vhd";
                         });

}  // namespace
}  // namespace vhdkit::testing
