// SPDX-License-Identifier: Apache-2.0
// Full mode on NTFS, interrupted. The crash harness (tests/compact/crash_harness.h): after a power cut at
// every operation, in every representative state, the image opens, checks clean, reads the same on every
// range NTFS uses, and a rerun finishes. And SIGKILL of the real `vhdkit compact --mode full` at several
// moments: the image (its VHDX log replayed by qemu-img check -r all) reads the same on every used range,
// ntfsfix -n is clean and every file is there, and a rerun reaches the size an undisturbed run reaches.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "child_process.h"
#include "crash_harness.h"
#include "windows_disk.h"

namespace vhdkit::testing {
namespace {

class NtfsCrash : public ::testing::TestWithParam<std::string> {};

struct NtfsGuest {
  std::string raw;
  GuestFiles files;
  WinVolume volume;
};

// Fewer and smaller files than make_guest_files, so that the power-cut matrix stays at seconds: 1.3 MiB
// kept, 4 MiB deleted (a whole 2 MiB VHD block at least).
GuestFiles small_files(const TempDir& dir) {
  GuestFiles g;
  g.folder = dir.file("small-files");
  std::filesystem::create_directories(g.folder);
  const std::pair<const char*, uint64_t> files[] = {{"/keep1", kMiB}, {"/big_deleted", 4 * kMiB}, {"/keep2", 300000}};
  uint64_t seed = 41;
  for (auto [name, size] : files) {
    std::string path = g.folder + name;
    run_ok("truncate -s " + std::to_string(size) + " " + q(path));
    fill_random(path, 0, size, seed++);
    if (std::string(name).find("del") != std::string::npos) {
      g.deleted.push_back(name);
    } else {
      g.kept[name] = sha256(path);
    }
  }
  return g;
}

// NTFS behind GPT with deleted data.
NtfsGuest make_small_ntfs(const TempDir& dir, uint64_t mib, bool small) {
  NtfsGuest g;
  g.files = small ? small_files(dir) : make_guest_files(dir, 31);
  std::string fs = make_ntfs(dir, "crash", 4096, g.files, mib);
  g.raw = make_partitioned(
      dir, "crash.raw", mib + 2,
      "label: gpt\nstart=2048, size=" + std::to_string(mib * 2048) + ", type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n");
  place(fs, g.raw, kMiB);
  g.volume = {WinFs::Ntfs, kMiB, mib * kMiB, nullptr};
  return g;
}

TEST_P(NtfsCrash, PowerCutsInFullOnNtfs) {
  for (const char* tool : {"mkntfs", "ntfs-3g", "qemu-img"})
    if (run("command -v " + std::string(tool) + " >/dev/null").status != 0) GTEST_FAIL() << tool << " is missing";
  const std::string& format = GetParam();
  TempDir dir;
  // VHD's 2 MiB blocks need a larger volume for a block to hold only deleted data: NTFS puts metadata in
  // its middle.
  NtfsGuest g = make_small_ntfs(dir, format == "vhd" ? 16 : 8, true);
  std::string img = convert(g.raw, dir.file("crash." + format), format);
  CrashSetup setup = crash_setup_of(img);
  vhdkit::fs::UsageMap map = map_raw(g.raw);
  ASSERT_EQ(map.volumes.size(), 1u);
  ASSERT_EQ(map.volumes[0].filesystem, "ntfs");
  ASSERT_EQ(map.volumes[0].state, vhdkit::fs::Volume::State::Read) << map.volumes[0].reason;
  for (const auto& r : map.used) setup.used.emplace_back(r.offset, r.length);
  crash_matrix("full, ntfs, " + format, setup);
}

INSTANTIATE_TEST_SUITE_P(Formats, NtfsCrash, ::testing::Values("vhd", "vhdx"),
                         [](const auto& test) { return test.param; });

TEST(NtfsKill, SigkillDuringFullThenRerun) {
  TempDir dir;
  NtfsGuest g = make_small_ntfs(dir, 48, false);
  g.volume.files = &g.files;
  vhdkit::fs::UsageMap map = map_raw(g.raw);
  const std::string pristine = convert(g.raw, dir.file("pristine.vhdx"), "vhdx");
  // The undisturbed run: its size and its duration place the kills.
  const std::string calm = dir.file("calm.vhdx");
  std::filesystem::copy_file(pristine, calm);
  const auto t0 = std::chrono::steady_clock::now();
  run_ok(q(vhdkit_bin()) + " compact --mode full " + q(calm) + " 2>&1");
  const auto whole = std::chrono::steady_clock::now() - t0;
  const uint64_t calm_size = std::filesystem::file_size(calm);
  int killed = 0;
  for (double fraction : {0.0, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85}) {
    SCOPED_TRACE("kill at " + std::to_string(fraction) + " of the run");
    const std::string img = dir.file("kill.vhdx");
    std::filesystem::remove(img);
    std::filesystem::copy_file(pristine, img);
    {
      ChildProcess p({vhdkit_bin(), "compact", "--mode", "full", img});
      std::this_thread::sleep_for(std::chrono::duration_cast<std::chrono::microseconds>(whole * fraction));
      if (p.running()) {
        p.signal(SIGKILL);
        ++killed;
      }
      p.wait();
    }
    run("qemu-img check -q -r all -f vhdx " + q(img) + " >/dev/null 2>&1");
    expect_windows_intact(dir, img, g.raw, map.used, {g.volume});
    run_ok(q(vhdkit_bin()) + " compact --mode full " + q(img) + " 2>&1");
    EXPECT_EQ(std::filesystem::file_size(img), calm_size);
    expect_windows_intact(dir, img, g.raw, map.used, {g.volume});
  }
  EXPECT_GT(killed, 0) << "every run ended before its kill: the kill points are too late";
}

}  // namespace
}  // namespace vhdkit::testing
