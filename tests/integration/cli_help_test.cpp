// SPDX-License-Identifier: Apache-2.0
// Every subcommand answers --help; bad command lines fail with a usage message and change nothing.
#include <gtest/gtest.h>

#include <sstream>

#include "cli_util.h"

namespace vhdkit::testing {
namespace {

// The subcommands `vhdkit --help` lists (so a subcommand added later is covered without editing this test).
std::vector<std::string> listed_subcommands() {
  std::string help = run_ok(q(vhdkit_bin()) + " --help");
  std::istringstream in(help);
  std::vector<std::string> names;
  bool in_list = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("Subcommands:")) {
      in_list = true;
      continue;
    }
    if (in_list && line.starts_with("  ") && line.size() > 2 && line[2] != ' ') {
      names.push_back(line.substr(2, line.find(' ', 2) - 2));
    }
  }
  return names;
}

TEST(CliHelp, TopLevelHelpListsTheSubcommands) {
  auto names = listed_subcommands();
  for (const char* expected : {"info", "check", "map", "compare", "write"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
}

TEST(CliHelp, EverySubcommandAnswersHelp) {
  auto names = listed_subcommands();
  ASSERT_GE(names.size(), 5u);
  for (const auto& name : names) {
    RunResult r = vhdkit(name + " --help");
    EXPECT_EQ(r.status, 0) << name << ": " << r.err;
    EXPECT_NE(r.out.find("Usage: vhdkit " + name), std::string::npos) << name << " --help printed:\n" << r.out;
    EXPECT_NE(r.out.find("--help"), std::string::npos) << name;
  }
}

TEST(CliHelp, VersionPrintsTheVersion) {
  RunResult r = vhdkit("--version");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("vhdkit "), std::string::npos) << r.out;
}

struct BadCommandLine {
  std::string args;
  std::string says;  // part of the problem stated on standard error
};

TEST(CliUsage, BadCommandLinesExitTwoWithUsageAndLeaveTheImageAlone) {
  TempDir dir;
  std::string img = dir.file("disk.raw");
  make_random_file(img, 1 << 20);
  std::string before = sha256(img);
  const std::string i = q(img);
  const std::vector<BadCommandLine> cases = {
      {"", "A subcommand is required"},
      {"frobnicate " + i, "frobnicate"},
      {"info", "IMAGE is required"},
      {"info --format qcow2 " + i, "qcow2"},
      {"info --no-such-option " + i, "--no-such-option"},
      {"check", "IMAGE is required"},
      {"map --json", "IMAGE is required"},
      {"compare " + i, "IMAGE2 is required"},
      {"compare -F nope " + i + " " + i, "nope"},
      {"write " + i + " 0", "source"},
      {"write " + i + " 0 --pattern 0xab", "--length"},
      {"write " + i + " 0 --length 4K", "--pattern"},
      {"write " + i + " 0 --pattern 1 --length 1 --from " + i, "exclude"},
      {"write " + i + " banana --pattern 1 --length 1", "banana"},
      {"write " + i + " 0 --pattern 1 --length 12Q", "12Q"},
  };
  for (const auto& c : cases) {
    RunResult r = vhdkit(c.args);
    EXPECT_EQ(r.status, 2) << "vhdkit " << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find("vhdkit: "), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << "vhdkit " << c.args << " should say '" << c.says << "':\n"
                                                     << r.err;
    EXPECT_NE(r.err.find("Usage: vhdkit"), std::string::npos) << "no usage for: vhdkit " << c.args << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << c.args << " printed on stdout:\n" << r.out;
  }
  EXPECT_EQ(sha256(img), before);
}

}  // namespace
}  // namespace vhdkit::testing
