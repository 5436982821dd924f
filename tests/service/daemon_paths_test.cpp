// SPDX-License-Identifier: Apache-2.0
// The paths vhdkitd trusts and the text it prints: its state folder, its database, its socket, the
// bearer token; read-only images; control characters in what `vhdkit jobs` prints.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>

#include "daemon_fixture.h"

namespace vhdkit::testing {
namespace {

using nlohmann::json;

// vhdkitd run to its end (it must refuse to start): its status and what it said.
RunResult start_refused(const std::string& state, const std::string& socket, const std::string& more = "") {
  return run("timeout 10 " + q(vhdkitd_bin()) + " --config /dev/null --socket " + q(socket) + " --state-dir " +
             q(state) + " " + more);
}

TEST(DaemonPaths, AStateFolderItDoesNotOwnAloneIsRefused) {
  TempDir dir;
  std::string sock = dir.file("v.sock");
  struct Case {
    const char* name;
    std::function<void(const std::string&)> make;
    const char* says;
  } cases[] = {
      {"foreign",
       [](const std::string& p) {
         std::filesystem::create_directory(p);
         ::chmod(p.c_str(), 0700);
         ASSERT_EQ(::chown(p.c_str(), 65534, 65534), 0);
       },
       "belongs to uid 65534"},
      {"open",
       [](const std::string& p) {
         std::filesystem::create_directory(p);
         ::chmod(p.c_str(), 0777);
       },
       "may be written by its group or others"},
      {"group",
       [](const std::string& p) {
         std::filesystem::create_directory(p);
         ::chmod(p.c_str(), 0770);
       },
       "may be written by its group or others"},
  };
  for (const auto& c : cases) {
    std::string state = dir.file(c.name);
    c.make(state);
    RunResult r = start_refused(state, sock);
    EXPECT_EQ(r.status, 1) << c.name << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.name << ": " << r.err;
    EXPECT_TRUE(std::filesystem::is_empty(state)) << c.name << ": the service created files in it";
    EXPECT_FALSE(std::filesystem::exists(sock));
  }
  // A symbolic link as the folder, and as the database inside a good folder: refused, the target untouched.
  std::string target = dir.file("target");
  std::filesystem::create_directory(target);
  ::chmod(target.c_str(), 0700);
  std::filesystem::create_directory_symlink(target, dir.file("linked"));
  RunResult linked = start_refused(dir.file("linked"), sock);
  EXPECT_EQ(linked.status, 1) << linked.err;
  EXPECT_NE(linked.err.find("symbolic link"), std::string::npos) << linked.err;
  std::string good = dir.file("good");
  std::filesystem::create_directory(good);
  ::chmod(good.c_str(), 0700);
  std::string elsewhere = dir.file("users-choice");
  std::filesystem::create_symlink(elsewhere, good + "/jobs.sqlite3");
  RunResult db_link = start_refused(good, sock);
  EXPECT_EQ(db_link.status, 1) << db_link.err;
  EXPECT_FALSE(std::filesystem::exists(elsewhere)) << "root created a file where the link pointed";
  EXPECT_TRUE(std::filesystem::is_empty(target));
}

TEST(DaemonPaths, OnlyASocketIsEverReplacedAndItsModeIsSetAtBind) {
  TempDir dir;
  std::string state = dir.file("state");
  // A regular file at the socket's path: refused, kept as it was.
  std::string file = dir.file("taken.sock");
  write_file(file, std::vector<std::byte>(100, std::byte{7}));
  std::string sha = sha256(file);
  RunResult r = start_refused(state, file);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("is not a socket"), std::string::npos) << r.err;
  EXPECT_EQ(sha256(file), sha);
  // A symbolic link there (to a file of the user's choice) likewise.
  std::string link = dir.file("link.sock");
  std::filesystem::create_symlink(file, link);
  EXPECT_EQ(start_refused(state, link).status, 1);
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ(sha256(file), sha);
  // The daemon's own socket: mode 0666, made so by bind; a stale one (left by SIGKILL) is replaced.
  auto d = std::make_unique<Daemon>(dir);
  struct stat st {};
  ASSERT_EQ(::lstat(d->socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  d->kill();
  d->start();
  EXPECT_TRUE(d->alive());
  std::string sock = d->socket();
  d.reset();
  EXPECT_FALSE(std::filesystem::exists(sock)) << "SIGTERM leaves the socket behind";
}

TEST(DaemonPaths, TheTokenFileMustBePrivateAndTheSchemeIsCaseInsensitive) {
  TempDir dir;
  std::string token = "0123456789abcdef0123456789abcdef";
  std::string token_file = dir.file("token");
  write_file(token_file, std::vector<std::byte>(reinterpret_cast<const std::byte*>(token.data()),
                                                reinterpret_cast<const std::byte*>(token.data()) + token.size()));
  int port = 20000 + (::getpid() + 7) % 20000;
  std::string tcp = " --tcp-port " + std::to_string(port) + " --token-file " + q(token_file);
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    ::chmod(token_file.c_str(), mode);
    RunResult r = start_refused(dir.file("state"), dir.file("v.sock"), tcp);
    EXPECT_EQ(r.status, 1) << std::oct << mode << r.err;
    EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
  }
  ASSERT_EQ(::chown(token_file.c_str(), 65534, 65534), 0);
  ::chmod(token_file.c_str(), 0600);
  EXPECT_NE(start_refused(dir.file("state"), dir.file("v.sock"), tcp).err.find("belongs to uid 65534"),
            std::string::npos);
  ASSERT_EQ(::chown(token_file.c_str(), 0, 0), 0);
  Daemon d(dir, {"--tcp-port", std::to_string(port), "--token-file", token_file});
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/v2/jobs";
  for (std::string scheme : {"Bearer", "bearer", "BEARER", "bEaReR"}) {
    RunResult r =
        run("curl -s -o /dev/null -w '%{http_code}' -H " + q("Authorization: " + scheme + " " + token) + " " + q(url));
    EXPECT_EQ(r.out, "200") << scheme;
  }
  for (std::string wrong :
       {token.substr(0, 31), token + "0", token.substr(0, 31) + "X", std::string(""), "Basic " + token}) {
    RunResult r =
        run("curl -s -o /dev/null -w '%{http_code}' -H " + q("Authorization: Bearer " + wrong) + " " + q(url));
    EXPECT_EQ(r.out, "401") << wrong;
  }
}

TEST(DaemonPaths, AReadOnlyImageIsRefusedUnlessForced) {
  TempDir dir;
  Daemon d(dir);
  std::string img = make_dynamic_vhd(dir, "ro.vhd", "DZZD");
  ::chmod(img.c_str(), 0444);
  std::string sha = sha256(img);
  json refused = d.compact(img);
  EXPECT_EQ(refused["ReturnValue"], 32769) << refused.dump();
  EXPECT_NE(refused.value("Message", "").find("read-only"), std::string::npos) << refused.dump();
  EXPECT_EQ(sha256(img), sha);
  // A dry run writes nothing: allowed.
  json dry =
      d.call("POST", "/v2/ImageManagementService/CompactVirtualHardDisk", json{{"Path", img}, {"DryRun", true}}).body;
  EXPECT_EQ(dry["ReturnValue"], 4096) << dry.dump();
  d.wait_job(dry["Job"]);
  EXPECT_EQ(sha256(img), sha);
  EXPECT_EQ(
      d.call("POST", "/v2/ImageManagementService/CompactVirtualHardDisk", json{{"Path", img}, {"Force", "yes"}}).status,
      400u);
  json forced =
      d.call("POST", "/v2/ImageManagementService/CompactVirtualHardDisk", json{{"Path", img}, {"Force", true}}).body;
  ASSERT_EQ(forced["ReturnValue"], 4096) << forced.dump();
  EXPECT_EQ(d.wait_job(forced["Job"])["JobState"], 7);
  EXPECT_NE(sha256(img), sha);
  expect_tools_accept(img);
}

TEST(DaemonPaths, VhdkitJobsEscapesControlCharacters) {
  TempDir dir;
  Daemon d(dir);
  std::string odd = dir.file(
      "evil\x1b[2J\r\nfake-job  Completed 100%  \\\xc2\x9b"
      "2J.vhd");
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZ");
  ASSERT_EQ(::rename(img.c_str(), odd.c_str()), 0);
  json started = d.compact(odd);
  ASSERT_EQ(started["ReturnValue"], 4096) << started.dump();
  d.wait_job(started["Job"]);
  RunResult r = run(q(vhdkit_bin()) + " jobs --service " + q(d.socket()));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\r'), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find("evil\\x1b[2J\\x0d\\x0afake-job"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\\\\\\u009b2J.vhd"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\xc2\x9b"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace vhdkit::testing
