// SPDX-License-Identifier: Apache-2.0
// Real VHDX images made by Windows, Disk2VHD and qemu (../shared/fixtures, SOURCES.md): each opens, has the
// BAT states SOURCES.md lists, and reads what qemu-img convert reads. The two dirty-log images replay as
// `qemu-img check -r all` replays them, in memory without touching the file when opened read-only.
#include "vhdx_test_util.h"

namespace vhdkit::vhdx::testing {
namespace {

using Counts = std::map<std::string, uint64_t>;

struct Fixture {
  const char* name;
  uint64_t virtual_size;
  uint32_t block_size;
  uint32_t logical, physical;
  disk::DiskType type;
  Counts states;
};

class VhdxFixtures : public ::testing::TestWithParam<Fixture> {};

TEST_P(VhdxFixtures, OpensReadsAndLeavesTheFileAlone) {
  VHDKIT_NEEDS_FIXTURES();
  const Fixture& f = GetParam();
  TempDir dir;
  std::string path = expand_fixture(f.name, dir);
  std::string before = sha256(path);
  auto d = open_ok(path);
  ASSERT_TRUE(d);
  disk::DiskInfo info = d->info();
  EXPECT_EQ(info.format, disk::Format::Vhdx);
  EXPECT_EQ(info.type, f.type);
  EXPECT_EQ(d->virtual_size(), f.virtual_size);
  EXPECT_EQ(info.block_size, f.block_size);
  EXPECT_EQ(info.logical_sector_size, f.logical);
  EXPECT_EQ(info.physical_sector_size, f.physical);
  EXPECT_EQ(state_counts(vhdx_of(*d)), f.states);
  EXPECT_TRUE(d->check().empty()) << d->check().front();
  expect_same_as_raw(*d, qemu_raw(path, dir), dir);
  d.reset();
  EXPECT_EQ(sha256(path), before);
}

INSTANTIATE_TEST_SUITE_P(All, VhdxFixtures,
                         ::testing::Values(Fixture{"qemu-iotests/iotest-dynamic-1G.vhdx.bz2",
                                                   1073741824,
                                                   33554432,
                                                   512,
                                                   4096,
                                                   disk::DiskType::Dynamic,
                                                   {{"ZERO", 29}, {"FULLY_PRESENT", 3}}},
                                           Fixture{"qemu-iotests/test-disk2vhd.vhdx.bz2",
                                                   268435456,
                                                   2097152,
                                                   512,
                                                   512,
                                                   disk::DiskType::Dynamic,
                                                   {{"FULLY_PRESENT", 128}}},
                                           Fixture{"discutils/swap.zip",
                                                   10737418240,
                                                   33554432,
                                                   512,
                                                   4096,
                                                   disk::DiskType::Dynamic,
                                                   {{"NOT_PRESENT", 318}, {"ZERO", 1}, {"FULLY_PRESENT", 1}}},
                                           Fixture{"dissect.hypervisor/dynamic.vhdx.gz",
                                                   10485760,
                                                   33554432,
                                                   512,
                                                   4096,
                                                   disk::DiskType::Dynamic,
                                                   {{"FULLY_PRESENT", 1}}},
                                           Fixture{"dissect.hypervisor/fixed.vhdx.gz",
                                                   10485760,
                                                   2097152,
                                                   512,
                                                   4096,
                                                   disk::DiskType::Fixed,
                                                   {{"FULLY_PRESENT", 5}}}),
                         [](const auto& param_info) {
                           std::string n = std::filesystem::path(param_info.param.name).stem().stem().string();
                           for (char& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

// iotest 064's image: SOURCES.md says 0xa5 over the first 33 MB; qemu-io and we must agree on that.
TEST(VhdxFixture, IotestDynamicHoldsThePatternQemuIoSees) {
  VHDKIT_NEEDS_FIXTURES();
  TempDir dir;
  std::string path = expand_fixture("qemu-iotests/iotest-dynamic-1G.vhdx.bz2", dir);
  auto d = open_ok(path);
  ASSERT_TRUE(d);
  // Ask qemu-io where the pattern is, then check that we read the same bytes there.
  RunResult r = run("qemu-io -r -c 'read -P 0xa5 0 33M' " + q(path));
  bool qemu_sees_pattern = r.status == 0 && r.out.find("Pattern verification failed") == std::string::npos;
  std::vector<std::byte> buf(1 << 20);
  bool all_a5 = true;
  for (uint64_t at = 0; at < 33 * (1 << 20); at += buf.size()) {
    ASSERT_TRUE(d->read(at, buf).has_value());
    for (auto b : buf) all_a5 = all_a5 && b == std::byte{0xa5};
  }
  EXPECT_TRUE(qemu_sees_pattern) << r.out;
  EXPECT_TRUE(all_a5);
}

// ---- Dirty logs ----

struct DirtyLog {
  const char* name;
  Counts after;  // after qemu-img check -r all (SOURCES.md)
};

class VhdxDirtyLog : public ::testing::TestWithParam<DirtyLog> {};

TEST_P(VhdxDirtyLog, ReplaysLikeQemuAndReadOnlyNeverWrites) {
  VHDKIT_NEEDS_FIXTURES();
  const DirtyLog& p = GetParam();
  TempDir dir;
  std::string path = expand_fixture(p.name, dir);
  std::string before = sha256(path);

  // qemu's replay, on its own copy.
  TempDir qdir;
  std::string theirs = qdir.file("theirs.vhdx");
  run_ok("cp --sparse=always " + q(path) + " " + q(theirs));
  run_ok("qemu-img check -r all " + q(theirs));
  std::string their_raw = qemu_raw(theirs, qdir);

  {
    // Read-only: replayed in memory; content and BAT states as qemu's, file untouched.
    auto d = open_ok(path);
    ASSERT_TRUE(d);
    Image* image = &vhdx_of(*d);
    EXPECT_FALSE(image->replayed_log().empty());
    EXPECT_EQ(state_counts(*image), p.after);
    expect_same_as_raw(*d, their_raw, dir);
    EXPECT_FALSE(d->check().empty());  // says the log still needs replaying on disk
  }
  EXPECT_EQ(sha256(path), before);

  {
    // Read-write: replayed to disk; the file is then clean for qemu too.
    auto d = open_ok(path, io::Access::ReadWrite);
    ASSERT_TRUE(d);
    EXPECT_EQ(state_counts(vhdx_of(*d)), p.after);
    EXPECT_TRUE(vhdx_of(*d).header().log_guid.is_zero());
  }
  run_ok("qemu-img check " + q(path));
  run_ok("qemu-img compare " + q(path) + " " + q(their_raw));
  auto again = open_ok(path);
  ASSERT_TRUE(again);
  EXPECT_TRUE(vhdx_of(*again).replayed_log().empty());
  EXPECT_EQ(state_counts(vhdx_of(*again)), p.after);
  EXPECT_TRUE(again->check().empty()) << again->check().front();
}

INSTANTIATE_TEST_SUITE_P(All, VhdxDirtyLog,
                         ::testing::Values(DirtyLog{"qemu-iotests/iotest-dirtylog-10G-4M.vhdx.bz2",
                                                    {{"NOT_PRESENT", 10222}, {"FULLY_PRESENT", 18}}},
                                           DirtyLog{"discutils/vhdx-log-replay.zip",
                                                    {{"NOT_PRESENT", 28}, {"ZERO", 3}, {"FULLY_PRESENT", 1}}}),
                         [](const auto& param_info) {
                           return param_info.index == 0 ? std::string("qemu") : std::string("windows");
                         });

}  // namespace
}  // namespace vhdkit::vhdx::testing
