// SPDX-License-Identifier: Apache-2.0
// The XFS and LVM2 readers on damaged and hostile images: each made by the real tools (mkfs.xfs; pvcreate,
// vgcreate, lvcreate on a loop device without device-mapper), then one structure broken - with its checksum
// recomputed where the point is what lies behind the checksum. Every case keeps the volume whole and says
// why; none may call a byte of it unused.
#include <gtest/gtest.h>

#include <unistd.h>
#include <array>
#include <fstream>
#include <string_view>

#include <boost/crc.hpp>

#include "fs/usage_map.h"
#include "open_disk.h"
#include "test_support.h"

namespace {

namespace vfs = vhdkit::fs;
using vhdkit::testing::patch_file;
using vhdkit::testing::q;
using vhdkit::testing::read_file;
using vhdkit::testing::run;
using vhdkit::testing::run_ok;
using vhdkit::testing::RunResult;
using vhdkit::testing::TempDir;
using vhdkit::testing::write_file;

constexpr uint64_t kMiB = 1 << 20;

using vhdkit::fs_test::map_ok;

bool have(const std::string& tool) { return run("command -v " + tool + " >/dev/null 2>&1").status == 0; }

uint32_t be32(const std::vector<std::byte>& b, size_t at) {
  return (uint32_t(b[at]) << 24) | (uint32_t(b[at + 1]) << 16) | (uint32_t(b[at + 2]) << 8) | uint32_t(b[at + 3]);
}
void put_le32(std::vector<std::byte>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = std::byte(v >> (8 * i));
}
void put_be32(std::vector<std::byte>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = std::byte(v >> (24 - 8 * i));
}
void put_le64(std::vector<std::byte>& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = std::byte(v >> (8 * i));
}
uint64_t le64(const std::vector<std::byte>& b, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | uint64_t(b[at + i]);
  return v;
}

// XFS's checksum: CRC32C of [at, at + len) with the 4-byte field at `field` taken as zero, stored little-endian.
void xfs_recrc(std::vector<std::byte>& b, size_t at, size_t len, size_t field) {
  put_le32(b, at + field, 0);
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(b.data() + at, len);
  put_le32(b, at + field, crc.checksum());
}

// LVM2's calc_crc.
uint32_t lvm_crc(const std::byte* p, size_t n) {
  uint32_t crc = 0xf597a6cfu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= uint8_t(p[i]);
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
  }
  return crc;
}

void expect_kept_whole(const std::string& raw, const std::string& why) {
  vfs::UsageMap m = map_ok(raw);
  ASSERT_EQ(m.volumes.size(), 1u);
  EXPECT_EQ(m.volumes[0].state, vfs::Volume::State::KeptWhole);
  EXPECT_NE(m.volumes[0].reason.find(why), std::string::npos) << m.volumes[0].reason;
  EXPECT_EQ(m.volumes[0].free_bytes, 0u);
}

class XfsDamage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("mkfs.xfs") || !have("xfs_db")) GTEST_FAIL() << "xfsprogs is missing";
  }
  // A v5 (or v4) XFS of 32 MiB with 1 KiB blocks (two AGs) on the bare disk.
  std::string make(const std::string& options = "") {
    std::string raw = dir_.file("xfs.raw");
    run_ok("rm -f " + q(raw) + " && truncate -s 32M " + q(raw));
    run_ok("TEST_DEV=1 TEST_DIR=1 QA_CHECK_FS=1 mkfs.xfs -q -f -b size=1024 " + options + " " + q(raw) + " 2>&1");
    return raw;
  }
  uint64_t field(const std::string& raw, const std::string& cmd, const std::string& name) {
    std::string out = run_ok("xfs_db -r -c " + q(cmd) + " -c " + q("p " + name) + " " + q(raw));
    return std::stoull(out.substr(out.find(" = ") + 3));
  }
  TempDir dir_;
};

TEST_F(XfsDamage, TheCleanImageIsRead) {
  std::string raw = make();
  vfs::UsageMap m = map_ok(raw);
  ASSERT_EQ(m.volumes.size(), 1u);
  EXPECT_EQ(m.volumes[0].state, vfs::Volume::State::Read) << m.volumes[0].reason;
  EXPECT_GT(m.volumes[0].free_bytes, 16 * kMiB);
}

TEST_F(XfsDamage, ASuperblockChecksumMismatchKeepsItWhole) {
  std::string raw = make();
  patch_file(raw, 108, {'X'});  // the label: only the checksum notices
  expect_kept_whole(raw, "superblock's checksum");
}

TEST_F(XfsDamage, UnknownFeaturesAnExternalLogAndARealtimeDeviceKeepItWhole) {
  struct Case {
    size_t at;
    uint32_t set;
    const char* why;
  };
  for (Case c : {Case{216, 0x80000000u, "unknown incompatible features"},
                 Case{212, 0x40000000u, "read-only-compatible"}, Case{216, 0x10u, "needing xfs_repair"}}) {
    std::string raw = make();
    auto b = read_file(raw);
    put_be32(b, c.at, be32(b, c.at) | c.set);
    xfs_recrc(b, 0, 512, 224);
    write_file(raw, b);
    SCOPED_TRACE(c.why);
    expect_kept_whole(raw, c.why);
  }
  std::string raw = make();
  auto b = read_file(raw);
  for (size_t i = 48; i < 56; ++i) b[i] = std::byte{0};  // sb_logstart 0: the log is elsewhere
  xfs_recrc(b, 0, 512, 224);
  write_file(raw, b);
  expect_kept_whole(raw, "external device");
  b[23] = std::byte{1};  // sb_rblocks
  xfs_recrc(b, 0, 512, 224);
  write_file(raw, b);
  expect_kept_whole(raw, "realtime");
}

TEST_F(XfsDamage, AnAgfOrBtreeBlockThatDoesNotCheckKeepsItWhole) {
  std::string raw = make();
  const uint64_t agblocks = field(raw, "sb 0", "agblocks");
  // AG 1's AGF (sector 1 of the AG): a spare byte changed, its checksum now wrong.
  patch_file(raw, agblocks * 1024 + 512 + 100, {0x5a});
  expect_kept_whole(raw, "AG 1: the AGF");

  raw = make();
  const uint64_t root = field(raw, "agf 0", "bnoroot");
  patch_file(raw, root * 1024 + 60, {0x5a});  // the first record of the bnobt root
  expect_kept_whole(raw, "checksum does not match");
}

TEST_F(XfsDamage, V4FreeExtentsThatDisagreeWithTheAgfKeepItWhole) {
  std::string raw = make("-m crc=0");
  ASSERT_EQ(map_ok(raw).volumes.at(0).state, vfs::Volume::State::Read);
  const uint64_t root = field(raw, "agf 0", "bnoroot");
  auto b = read_file(raw);
  // The v4 leaf's first record (16-byte header): one block more free than the AGF counts.
  const size_t count = root * 1024 + 16 + 4;
  put_be32(b, count, be32(b, count) + 1);
  write_file(raw, b);
  vfs::UsageMap m = map_ok(raw);
  ASSERT_EQ(m.volumes.size(), 1u);
  EXPECT_EQ(m.volumes[0].state, vfs::Volume::State::KeptWhole);
  EXPECT_EQ(m.volumes[0].free_bytes, 0u) << m.volumes[0].reason;
}

TEST_F(XfsDamage, ALogWhoseLastRecordIsNotAnUnmountKeepsItWhole) {
  std::string raw = make();
  const uint64_t logstart = field(raw, "sb 0", "logstart"), agblklog = field(raw, "sb 0", "agblklog");
  const uint64_t agblocks = field(raw, "sb 0", "agblocks");
  const uint64_t log = ((logstart >> agblklog) * agblocks + (logstart & ((1u << agblklog) - 1))) * 1024;
  // mkfs leaves one record: an unmount record (its op header's flags in the block after the header).
  patch_file(raw, log + 512 + 9, {0x00});
  expect_kept_whole(raw, "the log is dirty");
  patch_file(raw, log + 512 + 9, {0x20});
  EXPECT_EQ(map_ok(raw).volumes.at(0).state, vfs::Volume::State::Read);
  // Cycle numbers out of order: a block of the older pass stamped with the current one, past the head.
  patch_file(raw, log + 50 * 512, {0, 0, 0, 1});
  expect_kept_whole(raw, "out of order");
}

TEST_F(XfsDamage, AFileSystemLargerThanItsDiskKeepsItWhole) {
  std::string raw = make();
  run_ok("truncate -s 31M " + q(raw));
  expect_kept_whole(raw, "larger than its partition");
}

// An LVM2 PV of 8 MiB on the bare disk (1 MiB extents): LVs a (2 MiB) and b (1 MiB).
class LvmDamage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("pvcreate") || !have("losetup")) GTEST_FAIL() << "lvm2 is missing";
    raw_ = dir_.file("pv.raw");
    run_ok("truncate -s 8M " + q(raw_));
    std::string loop = run_ok("losetup -f --show " + q(raw_));
    loop.pop_back();
    const std::string o =
        " --driverloaded n --devices " + q(loop) + " --config 'backup/backup=0 backup/archive=0' >/dev/null 2>&1";
    const std::string vg = "vkdamage_" + std::to_string(getpid());
    RunResult r = run("pvcreate -q -y " + q(loop) + o + " && vgcreate -q -s 1m " + vg + " " + q(loop) + o +
                      " && lvcreate -q -an -Zn -L 2m -n a " + vg + o + " && lvcreate -q -an -Zn -L 1m -n b " + vg + o);
    run("losetup -d " + q(loop));
    ASSERT_EQ(r.status, 0) << r.out << r.err;
  }
  // The metadata text the PV's first metadata area points at.
  std::string text() {
    auto b = read_file(raw_);
    const size_t mda = 4096, off = le64(b, mda + 40), len = le64(b, mda + 48);
    std::string t(reinterpret_cast<const char*>(b.data()) + mda + off, len);
    while (!t.empty() && t.back() == '\0') t.pop_back();
    return t;
  }
  // Writes `t` where the current text is, with its size and checksum, and the header's checksum.
  void rewrite(const std::string& t) {
    auto b = read_file(raw_);
    const size_t mda = 4096, off = le64(b, mda + 40);
    ASSERT_LT(off + t.size(), kMiB - 4096);
    for (size_t i = 0; i < t.size(); ++i) b[mda + off + i] = std::byte(t[i]);
    put_le64(b, mda + 48, t.size());
    put_le32(b, mda + 56, lvm_crc(b.data() + mda + off, t.size()));
    put_le32(b, mda, lvm_crc(b.data() + mda + 4, 512 - 4));
    write_file(raw_, b);
  }
  std::string replaced(std::string t, const std::string& from, const std::string& to) {
    size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) t.replace(at, from.size(), to);
    return t;
  }
  TempDir dir_;
  std::string raw_;
};

TEST_F(LvmDamage, TheCleanPvIsRead) {
  vfs::UsageMap m = map_ok(raw_);
  ASSERT_EQ(m.volumes.size(), 1u);
  EXPECT_EQ(m.volumes[0].filesystem, "lvm2");
  EXPECT_EQ(m.volumes[0].state, vfs::Volume::State::Read) << m.volumes[0].reason;
  // Free: the 4 MiB of extents no LV uses. The empty LVs hold no file system: kept, and said.
  EXPECT_EQ(m.volumes[0].free_bytes, 4 * kMiB);
  EXPECT_NE(m.volumes[0].reason.find("no file system recognised"), std::string::npos);
  rewrite(text());  // the rewrite itself changes nothing
  EXPECT_EQ(map_ok(raw_).volumes.at(0).free_bytes, 4 * kMiB);
}

TEST_F(LvmDamage, ChecksumsThatDoNotMatchKeepItWhole) {
  auto pristine = read_file(raw_);
  patch_file(raw_, 512 + 100, {0x5a});  // in the label sector
  expect_kept_whole(raw_, "label's checksum");
  write_file(raw_, pristine);
  patch_file(raw_, 4096 + 200, {0x5a});  // in the metadata area's header
  expect_kept_whole(raw_, "header is damaged");
  write_file(raw_, pristine);
  auto b = read_file(raw_);
  patch_file(raw_, 4096 + le64(b, 4096 + 40) + 3, {'Z'});  // in the text
  expect_kept_whole(raw_, "checksum does not match");
}

std::string nested(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "n" + std::to_string(i) + " {\n";
  for (int i = 0; i < depth; ++i) s += "}\n";
  return s;
}

TEST_F(LvmDamage, SegmentsWeDoNotMapKeepThePvWhole) {
  const std::string t = text();
  struct Case {
    std::string from, to, why;
  };
  const Case cases[] = {
      {"type = \"striped\"", "type = \"raid1\"", "raid1 segment"},
      {"stripe_count = 1", "stripe_count = 2", "stripes disagree"},
      {"\"pv0\", 0", "\"pv9\", 0", "another PV"},
      {"\"pv0\", 0", "\"pv0\", 2", "the same physical extent"},
      {"\"pv0\", 0", "\"pv0\", 6", "past the PV's last extent"},
      {"extent_size = 2048", "extent_size = 99999999999999999999", "overflows"},
      {"extent_size = 2048", "extent_size = 2048.5", "fraction"},
      {"segment_count = 1", "segment_count = 2", "lacks segment 2"},
      {"format = \"lvm2\"", "format = \"lvm2\"\n" + nested(12), "nest too deep"},
      {"contents = \"Text Format Volume Group\"", "contents = \"Something else\"", "not LVM2 text format"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.why);
    rewrite(replaced(t, c.from, c.to));
    expect_kept_whole(raw_, c.why);
  }
}

}  // namespace
