// SPDX-License-Identifier: Apache-2.0
// SIGKILL the real `vhdkit compact` (Full mode) on an XFS inside LVM2 at several points, each time on a fresh
// copy: after each kill the image passes qemu-img check (a VHDX once qemu has replayed its log), every range
// the file systems use reads as before, the XFS LV passes xfs_repair -n, and compacting again finishes at
// the size an undisturbed run reaches with every file intact.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <random>
#include <regex>
#include <thread>

#include "child_process.h"
#include "compact_checks.h"
#include "xfs_lvm_guest.h"

namespace vhdkit::testing {
namespace {

using Clock = std::chrono::steady_clock;

// The percentage a redraw of the progress bar shows ("name [####......]  40%"), -1 for other lines.
int percent_of(const std::string& line) {
  static const std::regex bar(R"(\[[#.]*\] +(\d+)%$)");
  std::smatch m;
  return std::regex_search(line, m, bar) ? std::stoi(m[1]) : -1;
}

// Runs `vhdkit compact IMAGE` on a terminal (the bar redraws every 100 ms) and SIGKILLs it once the bar
// shows `percent` (a negative value: `-percent` ms after the start). True when the kill came before the end.
bool compact_killed(const std::string& image, int percent) {
  ChildProcess p({vhdkit_bin(), "compact", "--mode", "full", image}, "", Stdin::Null, Stdout::Terminal);
  if (percent < 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(-percent));
    p.signal(SIGKILL);
    return p.wait() == 128 + SIGKILL;
  }
  while (auto line = p.read_line()) {
    if (percent_of(*line) >= percent) {
      p.signal(SIGKILL);
      break;
    }
  }
  return p.wait() == 128 + SIGKILL;
}

class XfsLvmKill : public ::testing::TestWithParam<std::string> {};

TEST_P(XfsLvmKill, SigkillInFullModeLeavesAValidImageAndARerunFinishes) {
  for (const char* tool : {"mkfs.xfs", "xfs_repair", "pvcreate", "losetup", "qemu-img"})
    if (run("command -v " + std::string(tool) + " >/dev/null").status != 0) GTEST_FAIL() << tool << " is missing";
  const std::string& format = GetParam();
  const std::string qemu_format = format == "vhd" ? "vpc" : "vhdx";
  TempDir dir;
  GuestFiles files = make_guest_files(dir, 37);
  const std::string raw = dir.file("kill.raw");
  LvPlace root = make_xfs_in_lvm(dir, raw, files);
  const std::vector<vhdkit::fs::ByteRange> used = map_raw(raw).used;
  const std::string original = convert(raw, dir.file("original." + format), format);

  const std::string undisturbed = dir.file("undisturbed." + format);
  run_ok("cp --sparse=always " + q(original) + " " + q(undisturbed));
  compact_ok(undisturbed, {});
  const uint64_t final_size = file_size(undisturbed);
  ASSERT_LT(final_size, file_size(original));

  int killed = 0, part_way = 0;
  const std::string original_sha = sha256(original);
  for (int point : {-1, -5, -15, 0, 40, 66, 90}) {
    SCOPED_TRACE("kill at " + std::to_string(point));
    const std::string image = dir.file("killed." + format);
    run_ok("cp --sparse=always " + q(original) + " " + q(image));
    const bool was_killed = compact_killed(image, point);
    killed += was_killed;
    part_way += was_killed && sha256(image) != original_sha && file_size(image) != final_size;
    if (format == "vhdx") run_ok("qemu-img check -r all -f vhdx " + q(image) + " >/dev/null 2>&1");
    RunResult check = run("qemu-img check -f " + qemu_format + " " + q(image));
    if (format == "vhdx") {
      EXPECT_EQ(check.status, 0) << check.out << check.err;
    }
    std::string after = qemu_raw(image, dir, "after.raw");
    expect_raw_intact(dir, after, raw, used, {});
    expect_fs_intact(dir, after, {{root.offset, root.size, GuestFsType::Xfs, nullptr}});
    compact_ok(image, {});
    EXPECT_EQ(file_size(image), final_size);
    after = qemu_raw(image, dir, "after.raw");
    expect_raw_intact(dir, after, raw, used, {});
    expect_fs_intact(dir, after, {{root.offset, root.size, GuestFsType::Xfs, &files}});
  }
  EXPECT_GE(killed, 1) << "no kill landed before the run ended";
  EXPECT_GE(part_way, 1) << "no kill landed while the compaction was writing";
  std::cout << "xfs in lvm, " << format << ": " << killed << " of 7 kills landed before the end, " << part_way
            << " after the first write and before the shrink\n";
}

INSTANTIATE_TEST_SUITE_P(Formats, XfsLvmKill, ::testing::Values("vhd", "vhdx"),
                         [](const auto& test) { return test.param; });

}  // namespace
}  // namespace vhdkit::testing
