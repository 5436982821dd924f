// SPDX-License-Identifier: Apache-2.0
// Every real image in ../shared/fixtures that opens: what it holds, as the real tools see its raw conversion
// (sfdisk for the partition table, blkid for each file system), must be what our file-system layer reports
// through the image itself; and those we can compact in place (dynamic, with their parents) keep, after
// Full, every range their file systems use, and their files (ext2: every file's sha256 read out by debugfs;
// swap: blkid still finds it; the NTFS ones are held to ntfsfix and their files by fixture_test.cpp).
//
// What the fixtures hold (checked here): dfvfs ext2.vhd a bare ext2; discutils swap.vhdx a bare swap;
// dissect.hypervisor dynamic/fixed .vhd/.vhdx an MBR with one NTFS; qemu's test-disk2vhd.vhdx an MBR whose
// FAT16 partition holds no file system; the others no table and no file system (d2v-zerofilled.vhd,
// iotest-dynamic-1G.vhdx, the 127 GiB hyperv2012r2 and virtualpc disks, vhdx-log-replay.vhdx). Not here:
// fat-differential.vhd (its parent fat-parent.vhd is not among the fixtures), image*.vhd and the dirty-log
// VHDX (their checksums are wrong or their logs must be replayed: the negative cases of the vhd/vhdx tests).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "compact/compact.h"
#include "compact_checks.h"
#include "image/open_image.h"
#include "windows_disk.h"

namespace vhdkit::testing {
namespace {

struct Seen {
  std::string table;  // "dos", "gpt" (sfdisk's names) or "none"
  uint64_t offset = 0, size = 0;
  std::string filesystem;  // blkid's TYPE, "" when it finds none
  bool operator==(const Seen&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << s.table << " @" << s.offset << "+" << s.size << " '" << s.filesystem << "'";
}

std::string blkid_type(const std::string& raw, uint64_t offset, uint64_t size) {
  RunResult r = run("blkid -p -o value -s TYPE -O " + std::to_string(offset) + " -S " + std::to_string(size) + " " +
                    q(raw) + " 2>/dev/null");
  std::string t = r.status == 0 ? r.out : "";
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t;
}

// The volumes the real tools see on a raw disk.
std::vector<Seen> tools_see(const std::string& raw) {
  const uint64_t size = std::filesystem::file_size(raw);
  RunResult table = run("sfdisk -J " + q(raw) + " 2>/dev/null");
  if (table.status != 0 || table.out.empty()) {
    // No table: a file system on the bare disk, or nothing (then our layer lists no volume either).
    std::string type = blkid_type(raw, 0, size);
    if (type.empty()) return {};
    return {{"none", 0, size, type}};
  }
  auto j = nlohmann::json::parse(table.out)["partitiontable"];
  const uint64_t sector = j.value("sectorsize", 512);
  std::vector<Seen> out;
  for (const auto& p : j["partitions"]) {
    const uint64_t start = p["start"].get<uint64_t>() * sector, length = p["size"].get<uint64_t>() * sector;
    out.push_back({j["label"], start, length, blkid_type(raw, start, length)});
  }
  return out;
}

// The volumes our layer reports, opening the image itself; file-system names as blkid spells them.
std::vector<Seen> we_see(const std::string& image) {
  auto d = image::open_image(io::Env::posix(), image);
  EXPECT_TRUE(d) << d.error().what();
  if (!d) return {};
  auto m = vhdkit::fs::map_usage(**d);
  EXPECT_TRUE(m) << m.error().what();
  if (!m) return {};
  std::vector<Seen> out;
  for (const auto& v : m->volumes) {
    std::string fs = v.filesystem.starts_with("fat") ? "vfat" : v.filesystem;
    out.push_back({v.table == "mbr" ? "dos" : v.table, v.offset, v.size, fs});
  }
  return out;
}

struct Fixture {
  std::string name;
  bool compact_in_full = false;  // dynamic and readable: compacted in Full mode and judged
};

const std::vector<Fixture> kFixtures = {
    {"dfvfs/ext2.vhd.gz", true},
    {"discutils/swap.zip", true},
    {"dissect.hypervisor/dynamic.vhd.gz"},
    {"dissect.hypervisor/dynamic.vhdx.gz"},
    {"dissect.hypervisor/fixed.vhd.gz"},
    {"dissect.hypervisor/fixed.vhdx.gz"},
    {"qemu-iotests/test-disk2vhd.vhdx.bz2", true},
    {"qemu-iotests/d2v-zerofilled.vhd.bz2"},
    {"qemu-iotests/iotest-dynamic-1G.vhdx.bz2"},
    {"qemu-iotests/hyperv2012r2-dynamic.vhd.bz2"},
    {"qemu-iotests/virtualpc-dynamic.vhd.bz2"},
    {"discutils/vhdx-log-replay.zip"},
};

void PrintTo(const Fixture& f, std::ostream* os) { *os << f.name; }

// Every file of an ext file system, by path, with its sha256 (debugfs rdump).
std::map<std::string, std::string> ext_files(const TempDir& dir, const std::string& part, const std::string& name) {
  const std::string out = dir.file(name);
  std::filesystem::create_directories(out);
  run_ok("debugfs -R " + q("rdump / " + out) + " " + q(part) + " >/dev/null 2>&1");
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(out))
    if (e.is_regular_file())
      files[e.path().string().substr(out.size())] = run_ok("sha256sum " + q(e.path().string())).substr(0, 64);
  return files;
}

class FixtureSurvey : public ::testing::TestWithParam<Fixture> {};

TEST_P(FixtureSurvey, ReportsWhatTheToolsSeeAndFullKeepsTheFiles) {
  VHDKIT_NEEDS_FIXTURES();
  const Fixture& f = GetParam();
  TempDir dir;
  const std::string image = expand_fixture(f.name, dir);
  if (f.name.ends_with("vhdx-log-replay.zip")) {
    // qemu reads it only once its log is replayed (qemu-img check -r all), as vhdkit does in memory.
    run_ok("qemu-img check -q -r all -f vhdx " + q(image));
  }
  const std::string raw = qemu_raw(image, dir, "before.raw");
  const std::vector<Seen> tools = tools_see(raw), ours = we_see(image);
  EXPECT_EQ(ours, tools);
  if (!f.compact_in_full) return;

  vhdkit::fs::UsageMap map = map_raw(raw);
  std::vector<std::map<std::string, std::string>> files_before;
  for (const Seen& s : tools)
    if (s.filesystem.starts_with("ext"))
      files_before.push_back(ext_files(dir, extract(dir, raw, s.offset, s.size, "before.part"), "before.files"));
  compact::Options o;
  o.mode = compact::Mode::Full;
  compact::Report r = compact_ok(image, o);
  EXPECT_LE(r.file_size_after, r.file_size_before);
  const std::string format = image.ends_with(".vhdx") ? "vhdx" : "vpc";
  RunResult check = run("qemu-img check -f " + format + " " + q(image));
  if (format == "vhdx") {
    EXPECT_EQ(check.status, 0) << check.out << check.err;
  }
  const std::string after = qemu_raw(image, dir, "after.raw");
  uint64_t differing = 0;
  for (const auto& u : map.used)
    if (file_bytes(after, u.offset, u.length) != file_bytes(raw, u.offset, u.length)) ++differing;
  EXPECT_EQ(differing, 0u) << "used ranges that read differently after Full";
  if (map.used.empty() || !map.any_filesystem_read) {
    // Nothing was read: Full ran as Prezeroed, which keeps every byte.
    EXPECT_EQ(run("qemu-img compare -f raw -F raw " + q(raw) + " " + q(after)).status, 0);
  }
  size_t n = 0;
  for (const Seen& s : tools) {
    EXPECT_EQ(blkid_type(after, s.offset, s.size), s.filesystem) << s;
    if (!s.filesystem.starts_with("ext")) continue;
    const std::string part = extract(dir, after, s.offset, s.size, "after.part");
    RunResult fsck = run("e2fsck -fn " + q(part) + " 2>&1");
    EXPECT_EQ(fsck.status, 0) << fsck.out;
    EXPECT_EQ(ext_files(dir, part, "after.files"), files_before.at(n++));
  }
  std::cout << f.name << ": " << tools.size() << " volume(s); Full " << r.file_size_before << " -> "
            << r.file_size_after << " bytes\n";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureSurvey, ::testing::ValuesIn(kFixtures), [](const auto& test) {
  std::string n = std::filesystem::path(test.param.name).filename().string();
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
});

}  // namespace
}  // namespace vhdkit::testing
