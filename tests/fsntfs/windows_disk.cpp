// SPDX-License-Identifier: Apache-2.0
#include "windows_disk.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

namespace vhdkit::testing {
namespace {

// An ntfs-3g mount that is always taken down, even when a check fails half-way.
struct NtfsMount {
  std::string point;
  NtfsMount(const std::string& image, const std::string& mount_point, const std::string& options) : point(mount_point) {
    std::filesystem::create_directories(point);
    run_ok("ntfs-3g " + options + " " + q(image) + " " + q(point) + " 2>&1");
  }
  ~NtfsMount() { run("umount " + q(point) + " 2>/dev/null || umount -l " + q(point) + " 2>/dev/null"); }
  NtfsMount(const NtfsMount&) = delete;
  NtfsMount& operator=(const NtfsMount&) = delete;
};

uint64_t number_after(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern))) {
    ADD_FAILURE() << "no match for " << pattern << " in:\n" << text;
    return 0;
  }
  return std::stoull(m[1].str());
}

}  // namespace

std::string make_ntfs(const TempDir& dir, const std::string& name, uint64_t cluster, const GuestFiles& files,
                      uint64_t mib) {
  std::string img = dir.file(name + ".fs");
  run_ok("truncate -s " + std::to_string(mib) + "M " + q(img));
  run_ok("mkntfs -q -F -f -c " + std::to_string(cluster) + " " + q(img) + " 2>&1");
  {
    NtfsMount m(img, dir.file(name + ".mnt"), "");
    run_ok("cp -r " + q(files.folder) + "/. " + q(m.point) + "/");
    run_ok("sync");
    for (const std::string& d : files.deleted) run_ok("rm " + q(m.point + d));
  }
  return img;
}

std::string make_fat(const TempDir& dir, const std::string& name, int bits, const std::string& options,
                     const GuestFiles& files, uint64_t mib) {
  std::string img = dir.file(name + ".fs");
  run_ok("truncate -s " + std::to_string(mib) + "M " + q(img));
  run_ok("mkfs.vfat -F " + std::to_string(bits) + " " + options + " " + q(img) + " >/dev/null 2>&1");
  run_ok("MTOOLS_SKIP_CHECK=1 mcopy -s -i " + q(img) + " " + q(files.folder) + "/* ::/ 2>&1");
  for (const std::string& d : files.deleted) run_ok("MTOOLS_SKIP_CHECK=1 mdel -i " + q(img) + " " + q("::" + d));
  return img;
}

std::string extract(const TempDir& dir, const std::string& raw, uint64_t offset, uint64_t size,
                    const std::string& name) {
  std::string part = dir.file(name);
  run_ok("dd if=" + q(raw) + " of=" + q(part) + " bs=1M iflag=skip_bytes,count_bytes skip=" + std::to_string(offset) +
         " count=" + std::to_string(size) + " status=none");
  return part;
}

void expect_volume_intact(const TempDir& dir, const std::string& part, const WinVolume& v) {
  std::string out = part + ".out";
  std::filesystem::remove_all(out);
  if (v.fs == WinFs::Ntfs) {
    RunResult fix = run("ntfsfix -n " + q(part) + " 2>&1");
    EXPECT_EQ(fix.status, 0) << "ntfsfix -n:\n" << fix.out << fix.err;
    NtfsMount m(part, part + ".mnt", "-o ro");
    run_ok("cp -r " + q(m.point) + " " + q(out));
  } else {
    RunResult fsck = run("fsck.fat -n " + q(part) + " 2>&1");
    EXPECT_EQ(fsck.status, 0) << "fsck.fat -n:\n" << fsck.out << fsck.err;
    std::filesystem::create_directories(out);
    run_ok("MTOOLS_SKIP_CHECK=1 mcopy -s -n -i " + q(part) + " ::/ " + q(out) + "/ 2>&1");
  }
  (void)dir;
  ASSERT_NE(v.files, nullptr);
  for (const auto& [name, sha] : v.files->kept) {
    std::string got = out + name;
    EXPECT_TRUE(std::filesystem::exists(got)) << name << " lost";
    if (std::filesystem::exists(got)) {
      EXPECT_EQ(sha256(got), sha) << name;
    }
  }
  for (const std::string& d : v.files->deleted) EXPECT_FALSE(std::filesystem::exists(out + d)) << d << " came back";
}

void expect_windows_intact(const TempDir& dir, const std::string& image, const std::string& before_raw,
                           const std::vector<vhdkit::fs::ByteRange>& used, const std::vector<WinVolume>& volumes) {
  expect_qemu_check_passes(image);
  std::string after = qemu_raw(image, dir, "after.raw");
  EXPECT_GE(std::filesystem::file_size(after), std::filesystem::file_size(before_raw));
  uint64_t differing = 0;
  for (const vhdkit::fs::ByteRange& r : used)
    if (file_bytes(after, r.offset, r.length) != file_bytes(before_raw, r.offset, r.length)) ++differing;
  EXPECT_EQ(differing, 0u) << "used ranges that read differently after the compaction";
  int n = 0;
  for (const WinVolume& v : volumes) {
    SCOPED_TRACE("volume at " + std::to_string(v.offset));
    expect_volume_intact(dir, extract(dir, after, v.offset, v.size, "after" + std::to_string(n++) + ".part"), v);
  }
}

ToolCount ntfs_tool_count(const std::string& part) {
  std::string info = run_ok("ntfsinfo -m " + q(part) + " 2>/dev/null");
  ToolCount c;
  c.cluster = number_after(info, R"(Cluster Size: (\d+))");
  c.clusters = number_after(info, R"(Volume Size in Clusters: (\d+))");
  c.used_clusters = c.clusters - number_after(info, R"(Free Clusters: (\d+))");
  // ntfscluster -f counts the same free clusters another way: both must agree.
  std::string cl = run_ok("ntfscluster -f " + q(part) + " 2>&1");
  EXPECT_EQ(number_after(cl, R"(clusters of free space\s*:\s*(\d+))"), c.clusters - c.used_clusters);
  return c;
}

ToolCount fat_tool_count(const std::string& part) {
  std::string v = run_ok("fsck.fat -v -n " + q(part) + " 2>&1");
  ToolCount c;
  c.cluster = number_after(v, R"((\d+) bytes per cluster)");
  c.clusters = number_after(v, R"((\d+) data clusters)");
  c.used_clusters = number_after(v, R"(files, (\d+)/\d+ clusters)");
  c.data_start = number_after(v, R"(Data area starts at byte (\d+))");
  return c;
}

}  // namespace vhdkit::testing
