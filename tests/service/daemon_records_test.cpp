// SPDX-License-Identifier: Apache-2.0
// Job records on a bad day, against the real daemon: many fast jobs (a record never moves back to an
// earlier state), expiry (the rows go too), a state folder that fills up (a 1 MiB tmpfs) and a database
// SQLite cannot read.
#include <sys/mount.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "daemon_fixture.h"

namespace vhdkit::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kCompact = "/v2/ImageManagementService/CompactVirtualHardDisk";

// The job table as the sqlite3 tool reads it: "state count" lines.
std::string rows_by_state(const std::string& db) {
  return run_ok("sqlite3 " + q(db) + " 'SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state'");
}

TEST(DaemonRecords, AThousandFastJobsAreAllCompletedAfterARestart) {
  TempDir dir;
  auto d = std::make_unique<Daemon>(dir, std::vector<std::string>{"--queue-limit", "64"});
  std::vector<std::string> images;
  for (int i = 0; i < 16; ++i) images.push_back(make_dynamic_vhd(dir, "img" + std::to_string(i) + ".vhd", "DZ"));
  constexpr int kJobs = 1000;
  std::atomic<int> next{0}, started{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      for (int n = c;;) {
        if (next.fetch_add(1) >= kJobs) return;
        for (;;) {  // one job per image at a time: another image, or the same later
          json body{{"Path", images[n++ % images.size()]}, {"DryRun", true}};
          auto r = service::http_call(d->socket(), "POST", kCompact, body.dump());
          int rv = r ? r->body.value("ReturnValue", 0) : 0;
          if (rv == 4096) {
            ++started;
            break;
          }
          if (rv != 32774 && rv != 32777) {
            ++other;
            break;
          }
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  ASSERT_EQ(started, kJobs);
  EXPECT_EQ(other, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        json list = d->call("GET", "/v2/jobs").body;
        for (const auto& j : list["Jobs"])
          if (j["JobState"] != 7) return false;
        return list["Jobs"].size() == kJobs;
      },
      120s));
  EXPECT_EQ(d->terminate(), 0);
  std::string db = dir.file("state/jobs.sqlite3");
  EXPECT_EQ(rows_by_state(db), "7|1000\n");
  d->start();
  json list = d->call("GET", "/v2/jobs").body;
  ASSERT_EQ(list["Jobs"].size(), static_cast<size_t>(kJobs));
  int completed = 0;
  for (const auto& j : list["Jobs"]) completed += j["JobState"] == 7;
  EXPECT_EQ(completed, kJobs) << "jobs that read other than Completed after a clean restart";
  std::cout << "records: " << completed << " of " << kJobs << " fast jobs Completed after a restart\n";
}

TEST(DaemonRecords, ExpiryDeletesTheRows) {
  TempDir dir;
  Daemon d(dir, {"--time-before-removal", "1"});
  for (int i = 0; i < 3; ++i) {
    std::string img = make_dynamic_vhd(dir, "img" + std::to_string(i) + ".vhd", "DZ");
    d.wait_job(d.compact(img)["Job"]);
  }
  std::string db = dir.file("state/jobs.sqlite3");
  EXPECT_EQ(rows_by_state(db), "7|3\n");
  // Noticed by the API (a listing), not by the once-a-second sweep: the rows go all the same.
  ASSERT_TRUE(wait_until([&] { return d.call("GET", "/v2/jobs").body["Jobs"].empty(); }, 10s));
  ASSERT_TRUE(wait_until([&] { return rows_by_state(db).empty(); }, 3s)) << rows_by_state(db);
}

// A tmpfs of 1 MiB at `path`, unmounted (lazily if it must be) when the object goes.
class SmallTmpfs {
 public:
  explicit SmallTmpfs(const std::string& path) : path_(path) {
    std::filesystem::create_directories(path);
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0700") == 0;
  }
  ~SmallTmpfs() {
    if (mounted_ && ::umount(path_.c_str()) != 0) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  // Takes every free byte with a filler file; returns its path.
  std::string fill() {
    std::string filler = path_ + "/filler";
    run("dd if=/dev/zero of=" + q(filler) + " bs=4k status=none");
    return filler;
  }

 private:
  std::string path_;
  bool mounted_ = false;
};

TEST(DaemonRecords, AFullStateFolderKeepsRecordsInMemoryUntilSpaceReturns) {
  TempDir dir;
  SmallTmpfs tmpfs(dir.file("state"));
  ASSERT_TRUE(tmpfs.mounted()) << "this test mounts a 1 MiB tmpfs (it runs as root)";
  std::vector<std::string> images;
  for (int i = 0; i < 4; ++i) images.push_back(make_dynamic_vhd(dir, "img" + std::to_string(i) + ".vhd", "DZ"));
  auto d = std::make_unique<Daemon>(dir);
  d->wait_job(d->compact(images[0])["Job"]);
  std::string filler = tmpfs.fill();

  // Full: jobs still run and are listed, and the listing says which records are only in memory.
  std::vector<std::string> jobs;
  for (int i = 1; i < 4; ++i) {
    json started = d->compact(images[i]);
    ASSERT_EQ(started["ReturnValue"], 4096) << started.dump();
    jobs.push_back(started["Job"]);
    EXPECT_EQ(d->wait_job(jobs.back())["JobState"], 7);
  }
  json list = d->call("GET", "/v2/jobs").body;
  EXPECT_EQ(list["Jobs"].size(), 4u);
  ASSERT_TRUE(list.contains("Warning")) << list.dump();
  EXPECT_NE(list["Warning"].get<std::string>().find("kept in memory"), std::string::npos) << list.dump();
  EXPECT_NE(d->log().find("could not be written"), std::string::npos) << d->log();

  // Space returns: the records are written within a few seconds, and the warning goes.
  std::filesystem::remove(filler);
  ASSERT_TRUE(wait_until([&] { return !d->call("GET", "/v2/jobs").body.contains("Warning"); }, 5s));
  EXPECT_EQ(rows_by_state(dir.file("state/jobs.sqlite3")), "7|4\n");

  // Full again and restarted: the service starts, and answers for what it had written.
  d->terminate();
  filler = tmpfs.fill();
  d->start();
  EXPECT_TRUE(d->alive()) << d->log();
  EXPECT_EQ(d->call("GET", "/v2/jobs").body["Jobs"].size(), 4u);
  json more = d->compact(images[0]);
  EXPECT_EQ(more["ReturnValue"], 4096) << more.dump();
  d->wait_job(more["Job"]);
  d.reset();  // stopped before the tmpfs is unmounted
}

TEST(DaemonRecords, ADatabaseSqliteCannotReadIsMovedAside) {
  TempDir dir;
  std::string state = dir.file("state"), db = dir.file("state/jobs.sqlite3");
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZ");
  // (1) not a database at all; (2) a real one with a page overwritten.
  std::filesystem::create_directory(state);
  ::chmod(state.c_str(), 0700);
  write_file(db, std::vector<std::byte>(8192, std::byte{0x5a}));
  std::string garbage = sha256(db);
  {
    Daemon d(dir);
    EXPECT_NE(d.log().find("moved it to"), std::string::npos) << d.log();
    d.wait_job(d.compact(img)["Job"]);
  }
  int aside = 0;
  for (const auto& e : std::filesystem::directory_iterator(state))
    if (e.path().filename().string().starts_with("jobs.sqlite3.corrupt-")) {
      ++aside;
      EXPECT_EQ(sha256(e.path().string()), garbage);
    }
  EXPECT_EQ(aside, 1);
  // The new store holds the job; now damage one of its pages (with the log checkpointed into it).
  run_ok("sqlite3 " + q(db) + " 'PRAGMA wal_checkpoint(TRUNCATE)'");
  EXPECT_EQ(rows_by_state(db), "7|1\n");
  ASSERT_GE(file_size(db), 8192u);
  patch_file(db, 4096, std::vector<uint8_t>(4096, 0xa5));
  {
    Daemon d(dir);
    EXPECT_TRUE(d.alive());
    EXPECT_NE(d.log().find("moved it to"), std::string::npos) << d.log();
    EXPECT_EQ(d.call("GET", "/v2/jobs").body["Jobs"].size(), 0u);
  }
}

}  // namespace
}  // namespace vhdkit::testing
