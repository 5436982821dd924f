// SPDX-License-Identifier: Apache-2.0
#include "crash_harness.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "compact/compact.h"
#include "io/testing/crash_env.h"

namespace vhdkit::testing {

CrashSetup crash_setup_of(const std::string& image_file) { return {{{image_file, read_file(image_file)}}, image_file}; }

namespace {

// Does `now` read what `before` read, on the ranges that must not change (all of it when none are named)?
bool reads_the_same(const std::vector<std::byte>& now, const std::vector<std::byte>& before, const CrashSetup& setup) {
  if (setup.used.empty()) return now == before;
  if (now.size() != before.size()) return false;
  for (auto [offset, length] : setup.used) {
    if (offset + length > now.size()) return false;
    if (!std::equal(now.begin() + offset, now.begin() + offset + length, before.begin() + offset)) return false;
  }
  return true;
}

}  // namespace

void crash_matrix(const std::string& name, const CrashSetup& setup) {
  TempDir dir;
  const std::string& path = setup.target;
  const std::string extension = std::filesystem::path(path).extension().string();
  auto load = [&](auto& env) {
    for (const auto& [p, b] : setup.files) env.set_bytes(p, b);
  };
  io::MemEnv original;
  load(original);
  const auto content = virtual_content(original, path);
  ASSERT_FALSE(content.empty());
  ASSERT_TRUE(our_check(original, path).empty());
  const std::string original_file = dir.file("original" + extension);
  write_file(original_file, *original.bytes(path));

  compact::Options options;
  options.mode = setup.mode;
  // The result of an undisturbed run.
  uint64_t final_size = 0;
  {
    io::MemEnv mem;
    load(mem);
    auto r = compact::compact_image(mem, path, options);
    ASSERT_TRUE(r.has_value()) << r.error().what();
    final_size = r->file_size_after;
    if (setup.mode == compact::Mode::Retrim) {
      ASSERT_EQ(final_size, r->file_size_before);
      ASSERT_LT(r->allocated_bytes_after, r->allocated_bytes_before) << r->mode_note;
    } else {
      ASSERT_LT(final_size, r->file_size_before);
    }
  }

  const bool vhdx = qemu_format(original_file) == "vhdx";
  uint64_t referee_runs = 0, states_seen = 0, reruns = 0, qemu_replays = 0;
  auto coverage = io::run_crash_matrix(
      load, [&](io::Env& env) { (void)compact::compact_image(env, path, options); }, path,
      [&](io::MemEnv& after, const io::CrashPoint& point) {
        SCOPED_TRACE(point.describe());
        ++states_seen;
        // As the power cut left it (a VHDX log replayed in memory by a read-only open): the same content.
        ASSERT_TRUE(reads_the_same(virtual_content(after, path), content, setup)) << "virtual content changed";
        // qemu replays a VHDX log its own way (qemu-img check -r all): on a sample of the states, and on
        // every state of the last cut points (the shrink: the log must not describe a longer file then).
        if (vhdx && setup.qemu == QemuReads::Yes && (point.cut_after + 6 > point.total_ops || states_seen % 10 == 0)) {
          std::string file = dir.file("qemu-replayed" + extension);
          write_file(file, *after.bytes(path));
          RunResult replay = run("qemu-img check -q -r all " + q(file));
          ASSERT_EQ(replay.status, 0) << "qemu cannot replay the log: " << replay.out << replay.err;
          if (setup.used.empty()) expect_same_content(original_file, file);
          ++qemu_replays;
        }
        // Recovered as its next writer would open it: checks clean and reads the same.
        recover(after, path);
        auto problems = our_check(after, path);
        ASSERT_TRUE(problems.empty()) << problems.front();
        ASSERT_TRUE(reads_the_same(virtual_content(after, path), content, setup))
            << "virtual content changed by the recovery";
        // The real tools on a sample of the states.
        if (states_seen % 25 == 1) {
          std::string file = dir.file("state" + extension);
          write_file(file, *after.bytes(path));
          if (setup.qemu == QemuReads::Yes && setup.used.empty()) expect_same_content(original_file, file);
          expect_tools_accept(file, setup.qemu);
          ++referee_runs;
        }
        // Running again finishes the work (on every third state: the run is the costly part of a check).
        if (states_seen % 3 != 1) return;
        ++reruns;
        auto again = compact::compact_image(after, path, options);
        ASSERT_TRUE(again.has_value()) << again.error().what();
        EXPECT_EQ(after.bytes(path)->size(), final_size);
        ASSERT_TRUE(reads_the_same(virtual_content(after, path), content, setup))
            << "virtual content changed by the rerun";
        EXPECT_TRUE(our_check(after, path).empty());
      });
  std::cout << fmt::format(
      "crash harness [{}]: {} mutating operations, {} cut points, {} crash states "
      "checked ({} replayed by qemu-img check -r all, {} also by {}vhdiinfo, {} compacted "
      "again to the end)\n",
      name, coverage.total_ops, coverage.cut_points, coverage.states, qemu_replays, referee_runs,
      setup.qemu == QemuReads::Yes && setup.used.empty() ? "qemu-img compare, check and "
      : setup.qemu != QemuReads::No                      ? "qemu-img check and "
                                                         : "",
      reruns);
  EXPECT_GE(coverage.total_ops, 8u);
  EXPECT_GE(coverage.states, coverage.cut_points);
}

}  // namespace vhdkit::testing
