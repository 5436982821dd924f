// SPDX-License-Identifier: Apache-2.0
// What a path in a request may reach: only regular files, opened without blocking, as the caller, never
// through a /proc magic link; and a differencing disk a user makes tells him nothing of a parent he
// cannot read (the reply equals the reply for a missing parent).
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "daemon_fixture.h"

namespace vhdkit::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kCompact = "/v2/ImageManagementService/CompactVirtualHardDisk";
constexpr const char* kCompactV1 = "/v1/ImageManagementService/CompactVirtualHardDisk";
constexpr const char* kState = "/v2/ImageManagementService/GetVirtualHardDiskState";
constexpr const char* kValidate = "/v2/ImageManagementService/ValidateVirtualHardDisk";

// A socket file bound at `path` (the descriptor is closed again: the file stays).
void make_socket_file(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  ::close(fd);
}

TEST(DaemonFiles, FifosSocketsAndDevicesAreRefusedAtOnceAndTheServiceAnswers) {
  TempDir dir;
  Daemon d(dir);
  std::string fifo = dir.file("fifo.vhd"), sock = dir.file("sock.vhd"), chr = dir.file("null.vhd"),
              blk = dir.file("loop.vhd"), link = dir.file("link-to-fifo.vhd");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0666), 0);
  make_socket_file(sock);
  ASSERT_EQ(::mknod(chr.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);    // /dev/null's numbers
  ASSERT_EQ(::mknod(blk.c_str(), S_IFBLK | 0600, makedev(7, 250)), 0);  // a loop device that is not set up
  ASSERT_EQ(::symlink(fifo.c_str(), link.c_str()), 0);
  int cases = 0;
  for (const std::string& path : {fifo, sock, chr, blk, link, std::string("/dev/zero")}) {
    for (const char* target : {kCompact, kCompactV1, kState, kValidate}) {
      for (bool dry : {false, true}) {
        if (dry && target != kCompact) continue;
        json body{{"Path", path}};
        if (dry) body["DryRun"] = true;
        auto t0 = std::chrono::steady_clock::now();
        auto r = d.call("POST", target, body);
        auto took = std::chrono::steady_clock::now() - t0;
        EXPECT_EQ(r.body["ReturnValue"], 32773) << path << " " << target << " -> " << r.body.dump();
        EXPECT_NE(r.body.value("Message", "").find("not an image file"), std::string::npos) << r.body.dump();
        EXPECT_LT(took, 1s) << path << " " << target;
        ++cases;
      }
    }
  }
  // Two callers naming the FIFO at once, as in the issue: neither hangs, nor does anybody else.
  std::vector<std::thread> callers;
  std::atomic<int> refused{0};
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&] {
      auto r = service::http_call(d.socket(), "POST", kState, json{{"Path", fifo}}.dump());
      if (r && r->body.value("ReturnValue", 0) == 32773) ++refused;
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(refused, 4);
  EXPECT_EQ(d.call("GET", "/v2/jobs").body["Jobs"].size(), 0u);
  EXPECT_TRUE(d.alive()) << d.log();
  // The CLI does not hang on one either.
  for (std::string cmd : {" info ", " check ", " compact --dry-run ", " compact "}) {
    RunResult r = run("timeout 10 " + q(vhdkit_bin()) + cmd + q(fifo));
    EXPECT_EQ(r.status, 2) << cmd << r.out << r.err;
  }
  std::cout << "refused at once: " << cases << " requests on 6 special files\n";
}

// The daemon's own descriptor for its job database, as /proc/self/fd/N and /proc/PID/fd/N.
std::vector<std::string> magic_links_to_the_database(pid_t pid) {
  std::vector<std::string> out;
  std::string fds = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& e : std::filesystem::directory_iterator(fds)) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string().ends_with("jobs.sqlite3")) {
      out.push_back("/proc/self/fd/" + e.path().filename().string());
      out.push_back(e.path().string());
    }
  }
  return out;
}

TEST(DaemonFiles, ProcMagicLinksAreRefused) {
  TempDir dir;
  open_to_everyone(dir);
  Daemon d(dir);
  auto links = magic_links_to_the_database(d.pid());
  ASSERT_FALSE(links.empty());
  std::string sha = sha256(dir.file("state/jobs.sqlite3"));
  // A symlink a user owns, pointing at one, is refused the same way.
  std::string mine = dir.file("mine.vhd");
  ASSERT_EQ(::symlink(links.front().c_str(), mine.c_str()), 0);
  links.push_back(mine);
  for (const std::string& path : links) {
    for (const char* target : {kCompact, kState, kValidate}) {
      auto r = d.call("POST", target, json{{"Path", path}});
      EXPECT_EQ(r.body["ReturnValue"], 32773) << path << " " << target << " -> " << r.body.dump();
      EXPECT_NE(r.body.value("Message", "").find("magic link"), std::string::npos) << r.body.dump();
      auto as_nobody = d.call_as("nobody", "POST", target, json{{"Path", path}});
      EXPECT_NE(as_nobody.body.value("ReturnValue", 0), 0) << path << " " << as_nobody.body.dump();
      EXPECT_NE(as_nobody.body.value("ReturnValue", 0), 4096) << path << " " << as_nobody.body.dump();
    }
  }
  EXPECT_TRUE(d.alive());
}

// What an unprivileged user learns about a parent he cannot read, compared with a parent that is not
// there: for every method, the replies must be equal byte for byte.
TEST(DaemonFiles, AParentTheCallerCannotReadLooksMissing) {
  TempDir dir;
  open_to_everyone(dir);
  Daemon d(dir, {"--workers", "1"});
  // (a) in a folder only root may enter; (b) a root-only file in a folder everyone may enter; (c) the
  // same, but readable by its group only.
  std::string closed = dir.file("closed"), open = dir.file("open");
  std::filesystem::create_directory(closed);
  std::filesystem::create_directory(open);
  ::chmod(closed.c_str(), 0700);
  ::chmod(open.c_str(), 0755);
  struct Case {
    std::string parent;
    mode_t mode;
  } cases[] = {{closed + "/parent.vhd", 0644}, {open + "/parent.vhd", 0600}, {open + "/group.vhd", 0640}};
  int compared = 0;
  for (const auto& c : cases) {
    std::string made = make_dynamic_vhd(dir, "made.vhd", "DZD");
    ASSERT_EQ(::rename(made.c_str(), c.parent.c_str()), 0);
    std::string child = dir.file("child.vhd");
    std::filesystem::remove(child);
    run_ok(q(vhdkit_bin()) + " create --parent " + q(c.parent) + " " + q(child));
    run_ok(q(vhdkit_bin()) + " write " + q(child) + " 0 --pattern 0xab --length 512");
    ASSERT_EQ(::chown(child.c_str(), 65534, 65534), 0);
    ::chmod(c.parent.c_str(), c.mode);
    std::string child_sha = sha256(child);

    auto ask = [&] {
      std::vector<std::string> replies;
      for (const char* target : {kCompact, kState, kValidate}) {
        for (bool dry : {false, true}) {
          if (dry && target != kCompact) continue;
          json body{{"Path", child}};
          if (dry) body["DryRun"] = true;
          auto r = d.call_as("nobody", "POST", target, body);
          replies.push_back(std::to_string(r.status) + " " + r.body.dump());
        }
      }
      return replies;
    };
    auto unreadable = ask();
    std::filesystem::remove(c.parent);
    auto missing = ask();
    ASSERT_EQ(unreadable.size(), missing.size());
    for (size_t i = 0; i < missing.size(); ++i) {
      EXPECT_EQ(unreadable[i], missing[i]) << c.parent;
      EXPECT_EQ(missing[i].find("4096"), std::string::npos) << missing[i];
      ++compared;
    }
    EXPECT_NE(missing[0].find("32779"), std::string::npos) << missing[0];
    EXPECT_EQ(sha256(child), child_sha);
  }
  EXPECT_EQ(d.call("GET", "/v2/jobs").body["Jobs"].size(), 0u);
  std::cout << "parent probing: " << compared << " replies compared, unreadable == missing\n";
}

}  // namespace
}  // namespace vhdkit::testing
