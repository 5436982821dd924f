// SPDX-License-Identifier: Apache-2.0
// Text that is not UTF-8 (a host path is bytes; a parent locator holds whatever its writer put there) must
// reach no serializer that can throw: not the daemon's job records, listings, state and validation replies,
// and not the CLI's output. Each case ends with the daemon alive and answering, and the text shown with
// U+FFFD in place of the bad bytes.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "daemon_fixture.h"

namespace vhdkit::testing {
namespace {

using nlohmann::json;

constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8
constexpr const char* kState = "/v2/ImageManagementService/GetVirtualHardDiskState";
constexpr const char* kValidate = "/v2/ImageManagementService/ValidateVirtualHardDisk";

bool holds_replacement(const json& j) { return j.dump().find(kReplacement) != std::string::npos; }

TEST(DaemonBadText, AParentLocatorThatIsNotUtf8ReachesAJobRecordAndTheDaemonCarriesOn) {
  TempDir dir;
  auto d = std::make_unique<Daemon>(dir, std::vector<std::string>{"--workers", "1"});
  auto [child, parent] = make_child_with_non_utf8_parent(dir, "child.vhd");

  // The parent is found through the locator: state and validation name it and answer.
  json state = d->call("POST", kState, json{{"Path", child}}).body;
  EXPECT_EQ(state["ReturnValue"], 0) << state.dump();
  json valid = d->call("POST", kValidate, json{{"Path", child}}).body;
  EXPECT_EQ(valid["ReturnValue"], 0) << valid.dump();

  // A job whose run fails naming the parent: the one worker is busy, the child's job is queued with its
  // parent open, and the parent loses its data before the job runs. The job's ErrorDescription holds the
  // parent's path, bytes 0xFF 0xFE and all, and is recorded in SQLite from the worker thread.
  std::string slow = make_slow_vhd(dir, "slow.vhd", 256);
  json busy = d->compact(slow);
  ASSERT_EQ(busy["ReturnValue"], 4096) << busy.dump();
  d->wait_running(busy["Job"]);
  json queued = d->compact(child);
  ASSERT_EQ(queued["ReturnValue"], 4096) << queued.dump();
  ASSERT_EQ(::truncate(parent.c_str(), 4096), 0);
  json job = d->wait_job(queued["Job"]);
  EXPECT_EQ(job["JobState"], 10) << job.dump();
  EXPECT_TRUE(holds_replacement(job["ErrorDescription"])) << job.dump();
  ASSERT_TRUE(d->alive()) << d->log();
  json list = d->call("GET", "/v2/jobs").body;
  EXPECT_EQ(list["Jobs"].size(), 2u) << list.dump();
  EXPECT_TRUE(holds_replacement(list)) << list.dump();

  // vhdkit jobs prints it (as a row, as fields, as JSON) without aborting.
  for (std::string args : {" jobs --service ", " jobs --json --service "}) {
    RunResult r = run(q(vhdkit_bin()) + args + q(d->socket()));
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find(kReplacement), std::string::npos) << r.out;
  }
  RunResult one = run(q(vhdkit_bin()) + " jobs --service " + q(d->socket()) + " " + queued["Job"].get<std::string>());
  EXPECT_EQ(one.status, 0) << one.out << one.err;
  EXPECT_NE(one.out.find("ErrorDescription"), std::string::npos) << one.out;

  // The record survives a restart as written.
  d->terminate();
  d->start();
  json again = d->call("GET", queued["Job"]).body;
  EXPECT_EQ(again["JobState"], 10) << again.dump();
  EXPECT_EQ(again["ErrorDescription"], job["ErrorDescription"]);

  // Refusals naming the bad text: the parent gone, compaction and state say where they looked.
  ASSERT_EQ(::unlink(parent.c_str()), 0);
  json refused = d->compact(child);
  EXPECT_EQ(refused["ReturnValue"], 32779) << refused.dump();
  EXPECT_TRUE(holds_replacement(refused)) << refused.dump();
  json gone = d->call("POST", kState, json{{"Path", child}}).body;
  EXPECT_NE(gone["ReturnValue"], 0) << gone.dump();
  json problems = d->call("POST", kValidate, json{{"Path", child}}).body;
  EXPECT_TRUE(problems.contains("ReturnValue")) << problems.dump();
  EXPECT_TRUE(d->alive()) << d->log();
}

TEST(DaemonBadText, TheCliPrintsAFileNameThatIsNotUtf8) {
  TempDir dir;
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZD");
  std::string odd = dir.file("disk-\xff\xfe.vhd");
  ASSERT_EQ(::rename(img.c_str(), odd.c_str()), 0);
  for (std::string cmd :
       {" info --json ", " check --json ", " map --json ", " compact --dry-run --json ", " compact --json "}) {
    RunResult r = run(q(vhdkit_bin()) + cmd + q(odd));
    EXPECT_LT(r.status, 2) << cmd << r.out << r.err;
    EXPECT_FALSE(json::parse(r.out, nullptr, false).is_discarded()) << cmd << r.out;
  }
  // Through the service the name cannot be sent as JSON text: refused in the client, saying why.
  Daemon d(dir);
  RunResult r = run(q(vhdkit_bin()) + " compact --service=" + q(d.socket()) + " " + q(odd));
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("not valid UTF-8"), std::string::npos) << r.out;
  EXPECT_TRUE(d.alive());
}

}  // namespace
}  // namespace vhdkit::testing
