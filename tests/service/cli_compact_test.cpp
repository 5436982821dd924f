// SPDX-License-Identifier: Apache-2.0
// `vhdkit compact` as a user runs it: the reference samples' output without a terminal, --json, --log,
// several paths, exit statuses, Ctrl-C, and an image another program holds.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "child_process.h"
#include "service_images.h"

namespace vhdkit::testing {
namespace {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

std::string vhdkit() { return vhdkit_bin(); }

TEST(CliCompact, PrintsReferenceProgressLinesAndASummary) {
  TempDir dir;
  std::string img = make_slow_vhd(dir, "slow.vhd", 128);
  std::string orig = keep_copy(img);
  ChildProcess p({vhdkit(), "compact", img});
  ASSERT_EQ(p.wait(), 0);
  const auto& lines = p.lines();
  std::regex progress(R"(In progress\.\.\. (\d+)% completed\.)");
  std::vector<int> percents;
  for (const auto& l : lines) {
    std::smatch m;
    if (std::regex_match(l, m, progress)) percents.push_back(std::stoi(m[1]));
  }
  ASSERT_FALSE(percents.empty()) << "no progress line in:\n" << ::testing::PrintToString(lines);
  EXPECT_TRUE(std::is_sorted(percents.begin(), percents.end()));
  auto done = std::find_if(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.starts_with(img + " was compacted successfully: 256 MiB -> ");
  });
  ASSERT_NE(done, lines.end()) << ::testing::PrintToString(lines);
  EXPECT_NE(std::find(lines.begin(), lines.end(), "Summary:"), lines.end());
  EXPECT_LT(file_size(img), file_size(orig));
  expect_same_content(orig, img);
  expect_tools_accept(img);
}

TEST(CliCompact, SeveralPathsRunInTurnAndExitStatusSaysIfAllSucceeded) {
  TempDir dir;
  std::string a = make_dynamic_vhd(dir, "a.vhd", "DZDZ");
  std::string b = make_dynamic_vhd(dir, "b.vhd", "ZZDD");
  RunResult ok = run(q(vhdkit()) + " compact " + q(a) + " " + q(b));
  EXPECT_EQ(ok.status, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("  " + a + ": 8 MiB -> 4 MiB (Completed)"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("  " + b + ": 8 MiB -> 4 MiB (Completed)"), std::string::npos) << ok.out;

  // A missing image is refused with its reference value; the others still run; the exit status says
  // "not found" (3).
  std::string missing = dir.file("missing.vhd");
  std::string sha_b = sha256(b);
  RunResult mixed = run(q(vhdkit()) + " compact " + q(missing) + " " + q(b));
  EXPECT_EQ(mixed.status, 3) << mixed.out << mixed.err;
  EXPECT_NE(mixed.out.find("Compact " + missing + " returned error 32779 (File not found)"), std::string::npos)
      << mixed.out;
  EXPECT_NE(mixed.out.find(b + " was compacted successfully"), std::string::npos) << mixed.out;
  EXPECT_EQ(sha256(b), sha_b) << "compacting an already compact image changed it";

  RunResult raw =
      run("truncate -s 8M " + q(dir.file("x.raw")) + " && " + q(vhdkit()) + " compact " + q(dir.file("x.raw")));
  EXPECT_EQ(raw.status, 6) << raw.out;  // Not Supported
  EXPECT_NE(raw.out.find("returned error 32770 (Not Supported)"), std::string::npos) << raw.out;
  RunResult bad_mode = run(q(vhdkit()) + " compact --mode sideways " + q(a));
  EXPECT_EQ(bad_mode.status, 2) << bad_mode.err;  // bad arguments
  EXPECT_NE(bad_mode.err.find("not a mode"), std::string::npos) << bad_mode.err;
}

// VHD and VHDX side by side in one run; a fixed VHDX is refused by its reference value and left alone.
TEST(CliCompact, VhdAndVhdxInOneRun) {
  TempDir dir;
  std::string vhd = make_dynamic_vhd(dir, "a.vhd", "DZDZ");
  std::string vhdx = make_dynamic_vhdx(dir, "b.vhdx", "ZDZD", 2 * kMiB);
  std::string vhdx_orig = keep_copy(vhdx);
  std::string fixed = dir.file("fixed.vhdx");
  run_ok("qemu-img create -q -f vhdx -o subformat=fixed " + q(fixed) + " 8M");
  std::string fixed_sha = sha256(fixed);
  RunResult r = run(q(vhdkit()) + " compact " + q(vhd) + " " + q(vhdx) + " " + q(fixed));
  EXPECT_EQ(r.status, 6) << r.out << r.err;  // Not Supported, for the fixed one
  EXPECT_NE(r.out.find("  " + vhd + ": 8 MiB -> 4 MiB (Completed)"), std::string::npos) << r.out;
  // qemu's VHDX: 4 MiB of structures, a 4 MiB gap, four 2 MiB blocks; compacted: the structures and two blocks.
  EXPECT_NE(r.out.find("  " + vhdx + ": 16 MiB -> 8 MiB (Completed)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Compact " + fixed + " returned error 32770 (Not Supported)"), std::string::npos) << r.out;
  EXPECT_EQ(sha256(fixed), fixed_sha);
  expect_same_content(vhdx_orig, vhdx);
  expect_tools_accept(vhdx);
}

TEST(CliCompact, JsonPrintsTheFinalReportOnly) {
  TempDir dir;
  std::string a = make_dynamic_vhd(dir, "a.vhd", "DZZD");
  std::string missing = dir.file("missing.vhd");
  // Prezeroed: on a disk without a file system Quick runs as Pretrimmed and would release nothing here.
  RunResult r = run(q(vhdkit()) + " compact --json --mode prezeroed " + q(a) + " " + q(missing));
  EXPECT_EQ(r.status, 3);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["Succeeded"], false);
  ASSERT_EQ(j["Images"].size(), 2u);
  auto& first = j["Images"][0];
  EXPECT_EQ(first["Path"], a);
  EXPECT_EQ(first["ReturnValue"], 4096);
  EXPECT_EQ(first["Job"]["JobState"], 7);
  EXPECT_EQ(first["Job"]["PercentComplete"], 100);
  EXPECT_EQ(first["Job"]["Mode"], 4);
  auto& report = first["Job"]["Report"];
  EXPECT_EQ(report["FileSizeAfter"], file_size(a));
  EXPECT_GE(report["BytesReleased"].get<uint64_t>(), 4 * kMiB);
  EXPECT_EQ(report["FileSizeBefore"].get<uint64_t>() - report["FileSizeAfter"].get<uint64_t>(),
            report["BytesReleased"].get<uint64_t>());
  EXPECT_EQ(j["Images"][1]["ReturnValue"], 32779);
  EXPECT_TRUE(j["Images"][1]["Job"].is_null());
}

TEST(CliCompact, DryRunWritesNothingAndSaysWhatItWouldRelease) {
  TempDir dir;
  std::string a = make_dynamic_vhd(dir, "a.vhd", "DZZD");
  std::string before = sha256(a);
  RunResult r = run(q(vhdkit()) + " compact --dry-run " + q(a));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("compaction would release 4 MiB"), std::string::npos) << r.out;
  EXPECT_EQ(sha256(a), before);
}

TEST(CliCompact, LogAppendsEveryPrintedLine) {
  TempDir dir;
  std::string a = make_dynamic_vhd(dir, "a.vhd", "DZ");
  std::string log = dir.file("CompactVHD.log");
  write_file(log, {std::byte{'x'}, std::byte{'\n'}});
  RunResult first = run(q(vhdkit()) + " compact --log " + q(log) + " " + q(a));
  RunResult second = run(q(vhdkit()) + " compact --log " + q(log) + " " + q(dir.file("gone.vhd")));
  EXPECT_EQ(first.status, 0);
  EXPECT_EQ(second.status, 3);
  auto logged = split_lines(std::string(reinterpret_cast<const char*>(read_file(log).data()), read_file(log).size()));
  std::vector<std::string> expected{"x"};
  for (auto& l : split_lines(first.out)) expected.push_back(l);
  for (auto& l : split_lines(second.out)) expected.push_back(l);
  EXPECT_EQ(logged, expected);
}

TEST(CliCompact, CtrlCStopsAtASafePointAndRunningAgainFinishes) {
  TempDir dir;
  std::string img = make_slow_vhd(dir, "slow.vhd", 256);
  std::string orig = keep_copy(img);
  std::string uninterrupted = dir.file("uninterrupted.vhd");
  run_ok("cp --sparse=always " + q(img) + " " + q(uninterrupted) + " && " + q(vhdkit()) + " compact " +
         q(uninterrupted));
  ChildProcess p({vhdkit(), "compact", img});
  ASSERT_TRUE(p.wait_for_line("In progress..."));
  p.signal(SIGINT);
  EXPECT_EQ(p.wait(), 130);
  std::string all;
  for (auto& l : p.lines()) all += l + "\n";
  EXPECT_NE(all.find("Interrupted: stopping at the next safe point"), std::string::npos) << all;
  EXPECT_NE(all.find("Unable to compact " + img), std::string::npos) << all;
  EXPECT_NE(all.find("(Terminated)"), std::string::npos) << all;
  expect_same_content(orig, img);
  expect_tools_accept(img);

  RunResult again = run(q(vhdkit()) + " compact " + q(img));
  EXPECT_EQ(again.status, 0) << again.out << again.err;
  EXPECT_EQ(file_size(img), file_size(uninterrupted)) << again.out;
  expect_same_content(orig, img);
}

TEST(CliCompact, ImageHeldByQemuIsInUse) {
  TempDir dir;
  std::string a = make_dynamic_vhd(dir, "a.vhd", "DZ");
  std::string before = sha256(a);
  // qemu-io keeps the image open (and locked) while it waits for commands on its standard input.
  ChildProcess holder({"/usr/bin/qemu-io", "-f", "vpc", a}, "", Stdin::OpenPipe);
  ASSERT_TRUE(wait_until([&] { return file_is_locked(a); })) << "qemu-io never took its lock";
  RunResult r = run(q(vhdkit()) + " compact " + q(a));
  EXPECT_EQ(r.status, 5) << r.out << r.err;  // System is in use
  EXPECT_NE(r.out.find("returned error 32774 (System is in use)"), std::string::npos) << r.out;
  EXPECT_EQ(sha256(a), before);
}

}  // namespace
}  // namespace vhdkit::testing
