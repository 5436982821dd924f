// SPDX-License-Identifier: Apache-2.0
// vhdkitd end to end: the real daemon on a temporary socket and state directory, real images, real
// referees (qemu-img, vhdiinfo, qemu-io), every reply held to docs/openapi.json.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "child_process.h"
#include "compact/prepare.h"
#include "daemon/caller.h"
#include "daemon_fixture.h"
#include "io/file.h"

namespace vhdkit::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kCompact = "/v2/ImageManagementService/CompactVirtualHardDisk";
// What one allocated block of make_dynamic_vhd() takes in the file: 2 MiB of data and its 512-byte sector bitmap.
constexpr uint64_t kBlockInFile = 2 * kMiB + 512;

// curl as another user, through the socket; returns the reply body.
json curl_as(const std::string& user, const std::string& socket, const std::string& target, const json& body) {
  std::string out =
      run_ok("setpriv --reuid " + user + " --regid nogroup --clear-groups curl -sS --unix-socket " + q(socket) +
             " -H 'Content-Type: application/json' -d " + q(body.dump()) + " " + q("http://localhost" + target));
  return json::parse(out);
}

TEST(Daemon, CompactsAVhdAndReportsTheJob) {
  TempDir dir;
  Daemon d(dir);
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZZDZD");
  std::string orig = keep_copy(img);
  json started = d.compact(img, 0);
  ASSERT_EQ(started["ReturnValue"], 4096) << started.dump();
  std::string job_path = started["Job"];
  json job = d.wait_job(job_path);
  EXPECT_EQ(job["JobState"], 7) << job.dump();
  EXPECT_EQ(job["PercentComplete"], 100);
  EXPECT_EQ(job["ErrorCode"], 0);
  EXPECT_EQ(job["Owner"], 0);
  EXPECT_EQ(job["Report"]["FileSizeAfter"], file_size(img));
  EXPECT_EQ(job["Report"]["BlocksReleased"], 3);
  expect_same_content(orig, img);
  expect_tools_accept(img);
  json list = d.call("GET", "/v2/jobs").body;
  ASSERT_EQ(list["Jobs"].size(), 1u);
  EXPECT_EQ("/v2/jobs/" + list["Jobs"][0]["InstanceID"].get<std::string>(), job_path);
  // A finished job cannot be terminated.
  EXPECT_EQ(d.call("POST", job_path + "/RequestStateChange", json{{"RequestedState", 4}}).body["ReturnValue"], 32775);
  // The v1 form: Path only.
  json v1 = d.call("POST", "/v1/ImageManagementService/CompactVirtualHardDisk", json{{"Path", img}}).body;
  ASSERT_EQ(v1["ReturnValue"], 4096);
  EXPECT_EQ(d.wait_job(v1["Job"])["Mode"], 0);
}

TEST(Daemon, CompactsAVhdxAndReportsTheJob) {
  TempDir dir;
  Daemon d(dir);
  std::string img = make_dynamic_vhdx(dir, "a.vhdx", "DZZDZD", 2 * kMiB);
  std::string orig = keep_copy(img);
  json started = d.compact(img, 4);  // Prezeroed
  ASSERT_EQ(started["ReturnValue"], 4096) << started.dump();
  json job = d.wait_job(started["Job"]);
  EXPECT_EQ(job["JobState"], 7) << job.dump();
  EXPECT_EQ(job["ErrorCode"], 0);
  EXPECT_EQ(job["Mode"], 4);
  EXPECT_EQ(job["Report"]["Format"], "vhdx");
  EXPECT_EQ(job["Report"]["BlocksReleased"], 3);
  EXPECT_EQ(job["Report"]["FileSizeAfter"], file_size(img));
  EXPECT_LT(file_size(img), file_size(orig));
  expect_same_content(orig, img);
  expect_tools_accept(img);

  // A fixed VHDX is refused at once (Not Supported), untouched.
  std::string fixed = dir.file("fixed.vhdx");
  run_ok("qemu-img create -q -f vhdx -o subformat=fixed " + q(fixed) + " 8M");
  std::string sha = sha256(fixed);
  json refused = d.compact(fixed);
  EXPECT_EQ(refused["ReturnValue"], 32770) << refused.dump();
  EXPECT_NE(refused.dump().find("LeaveBlockAllocated"), std::string::npos) << refused.dump();
  EXPECT_EQ(sha256(fixed), sha);

  // A parent the caller declares (IsParent, as `vhdkit compact --is-parent --service`): Full and Quick are
  // refused with 32775 before a job exists, the file unchanged; a field of another type is refused as such.
  std::string parent = make_dynamic_vhdx(dir, "parent.vhdx", "DZZD", 2 * kMiB);
  std::string parent_sha = sha256(parent);
  for (int mode : {0, 1}) {
    json declared = d.call("POST", kCompact, json{{"Path", parent}, {"Mode", mode}, {"IsParent", true}}).body;
    EXPECT_EQ(declared["ReturnValue"], 32775) << declared.dump();
    EXPECT_NE(declared.dump().find("you said"), std::string::npos) << declared.dump();
  }
  EXPECT_EQ(d.call("POST", kCompact, json{{"Path", parent}, {"IsParent", "yes"}}).body["ReturnValue"], 32776);
  EXPECT_EQ(sha256(parent), parent_sha);
  json prezeroed = d.call("POST", kCompact, json{{"Path", parent}, {"Mode", 4}, {"IsParent", true}}).body;
  ASSERT_EQ(prezeroed["ReturnValue"], 4096) << prezeroed.dump();
  EXPECT_EQ(d.wait_job(prezeroed["Job"])["JobState"], 7);
}

TEST(Daemon, EveryReturnCodeIsProvoked) {
  TempDir dir;
  open_to_everyone(dir);
  Daemon d(dir, {"--workers", "1", "--queue-limit", "1"});
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZ");
  ::chmod(img.c_str(), 0644);
  std::string before = sha256(img);

  EXPECT_EQ(d.compact(dir.file("missing.vhd"))["ReturnValue"], 32779);
  EXPECT_EQ(d.compact("relative/a.vhd")["ReturnValue"], 32773);
  EXPECT_EQ(d.compact(img, 7)["ReturnValue"], 32773);
  auto typed = d.call("POST", kCompact, json{{"Path", img}, {"Mode", "full"}});
  EXPECT_EQ(typed.status, 400u);
  EXPECT_EQ(typed.body["ReturnValue"], 32776);
  run_ok("truncate -s 8M " + q(dir.file("disk.raw")));
  EXPECT_EQ(d.compact(dir.file("disk.raw"))["ReturnValue"], 32770);

  // A caller who could not open the image for writing himself: Access Denied, although vhdkitd is root.
  json denied = curl_as("nobody", d.socket(), kCompact, json{{"Path", img}, {"Mode", 0}});
  EXPECT_EQ(denied["ReturnValue"], 32769) << denied.dump();
  // ... and the same through a symlink he owns pointing at it: the opened file is what is judged.
  std::string link = dir.file("mine.vhd");
  ::symlink(img.c_str(), link.c_str());
  EXPECT_EQ(curl_as("nobody", d.socket(), kCompact, json{{"Path", link}})["ReturnValue"], 32769);
  // Once it is his to write, the same caller may.
  ::chmod(img.c_str(), 0666);
  json allowed = curl_as("nobody", d.socket(), kCompact, json{{"Path", img}});
  ASSERT_EQ(allowed["ReturnValue"], 4096) << allowed.dump();
  json job = d.wait_job(allowed["Job"]);
  EXPECT_EQ(job["Owner"], 65534);
  // Root sees every job; nobody sees only his own (not root's, made next).
  json list_nobody =
      json::parse(run_ok("setpriv --reuid nobody --regid nogroup --clear-groups curl -sS --unix-socket " +
                         q(d.socket()) + " http://localhost/v2/jobs"));
  EXPECT_EQ(list_nobody["Jobs"].size(), 1u);

  // Held by qemu: System is in use.
  {
    std::string held = make_dynamic_vhd(dir, "held.vhd", "DZ");
    std::string sha = sha256(held);
    ChildProcess qemu({"/usr/bin/qemu-io", "-f", "vpc", held}, "", Stdin::OpenPipe);
    ASSERT_TRUE(wait_until([&] { return file_is_locked(held); })) << "qemu-io never took its lock";
    json r = d.compact(held);
    EXPECT_EQ(r["ReturnValue"], 32774) << r.dump();
    EXPECT_EQ(sha256(held), sha);
  }

  // One job per image (32774) and a full queue (32777): one worker, queue limit 1.
  std::string slow1 = make_slow_vhd(dir, "slow1.vhd", 256);
  std::string slow2 = make_dynamic_vhd(dir, "slow2.vhd", "DZ");
  std::string slow3 = make_dynamic_vhd(dir, "slow3.vhd", "DZ");
  json running = d.compact(slow1);
  ASSERT_EQ(running["ReturnValue"], 4096);
  d.wait_running(running["Job"]);
  EXPECT_EQ(d.compact(slow1)["ReturnValue"], 32774);
  json queued = d.compact(slow2);
  EXPECT_EQ(queued["ReturnValue"], 4096);
  EXPECT_EQ(d.call("GET", queued["Job"]).body["JobState"], 2);  // New: waiting for the worker
  json full = d.compact(slow3);
  EXPECT_EQ(full["ReturnValue"], 32777) << full.dump();
  EXPECT_EQ(d.wait_job(running["Job"])["JobState"], 7);
  EXPECT_EQ(d.wait_job(queued["Job"])["JobState"], 7);
  EXPECT_TRUE(d.alive());
}

TEST(Daemon, TerminateStopsAJobAndLeavesTheImageValid) {
  TempDir dir;
  Daemon d(dir);
  std::string img = make_slow_vhd(dir, "slow.vhd", 256);
  std::string orig = keep_copy(img);
  json started = d.compact(img);
  ASSERT_EQ(started["ReturnValue"], 4096);
  std::string job_path = started["Job"];
  d.wait_running(job_path);
  json r = d.call("POST", job_path + "/RequestStateChange", json{{"RequestedState", 4}}).body;
  EXPECT_EQ(r["ReturnValue"], 4096) << r.dump();
  json job = d.wait_job(job_path);
  EXPECT_EQ(job["JobState"], 8) << job.dump();
  EXPECT_LT(job["PercentComplete"], 100);
  expect_same_content(orig, img);
  expect_tools_accept(img);
  // Running again finishes the work.
  json again = d.compact(img);
  EXPECT_EQ(d.wait_job(again["Job"])["JobState"], 7);
  expect_same_content(orig, img);
  EXPECT_LT(file_size(img), 4 * kMiB);
}

TEST(Daemon, KilledMidJobTheRestartedServiceReportsException) {
  TempDir dir;
  auto d = std::make_unique<Daemon>(dir);
  std::string img = make_slow_vhd(dir, "slow.vhd", 256);
  std::string orig = keep_copy(img);
  json started = d->compact(img);
  ASSERT_EQ(started["ReturnValue"], 4096);
  std::string job_path = started["Job"];
  d->wait_running(job_path);
  d->kill();

  d->start();  // same socket and state directory
  json job = d->call("GET", job_path).body;
  EXPECT_EQ(job["JobState"], 10) << job.dump();
  EXPECT_EQ(job["ErrorCode"], 32771);
  EXPECT_NE(job["ErrorDescription"].get<std::string>().find("vhdkitd stopped"), std::string::npos) << job.dump();
  expect_same_content(orig, img);
  expect_tools_accept(img);
  json again = d->compact(img);
  EXPECT_EQ(d->wait_job(again["Job"])["JobState"], 7);
  expect_same_content(orig, img);
}

TEST(Daemon, FinishedJobsAreRemovedAfterTimeBeforeRemoval) {
  TempDir dir;
  Daemon d(dir, {"--time-before-removal", "1"});
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZ");
  json started = d.compact(img);
  json job = d.wait_job(started["Job"]);
  EXPECT_EQ(job["TimeBeforeRemoval"], "00000000000001.000000:000");
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(d.call("GET", started["Job"]).status, 404u);
  d.terminate();
  d.start();  // removed from the store as well
  EXPECT_EQ(d.call("GET", "/v2/jobs").body["Jobs"].size(), 0u);
}

TEST(Daemon, BadInputIsRefusedAndTheDaemonCarriesOn) {
  TempDir dir;
  Daemon d(dir, {"--max-body", "4096"});
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZDZ");
  std::string before = sha256(img);
  struct Case {
    std::string body;
    unsigned status;
    const char* says;
  } cases[] = {
      {"{\"Path\": ", 400, "not valid JSON"},
      {"[1,2,3]", 400, "JSON object"},
      {"{\"Path\": \"" + img + "\", \"Overwrite\": true}", 400, "unknown field"},
      {"{\"Path\": \"" + img + "\xff\xfe\"}", 400, "UTF-8"},
      {"{\"Path\": \"" + dir.path().string() + "/../../etc/passwd\"}", 200, "normalized"},
      {"{\"Path\": \"" + img + "\\u0000.vhd\"}", 200, "NUL"},
      {"{\"Path\": 17}", 400, "must be a string"},
      {"{\"Path\": \"" + img + "\", \"Mode\": 99999}", 200, "out of range"},
      {"{\"Path\": \"" + std::string(8000, 'a') + "\"}", 413, "larger than"},
  };
  for (const auto& c : cases) {
    auto r = d.call_raw("POST", kCompact, c.body);
    EXPECT_EQ(r.status, c.status) << c.body.substr(0, 80) << " -> " << r.body.dump();
    EXPECT_NE(r.body.value("Message", "").find(c.says), std::string::npos) << r.body.dump();
    EXPECT_NE(r.body.value("ReturnValue", 0), 4096);
  }
  EXPECT_EQ(d.call("GET", "/v2/nowhere").status, 404u);
  EXPECT_EQ(d.call("GET", kCompact).status, 405u);
  // A request that is not HTTP at all.
  // Requests that are not HTTP, or lie about their length, or stop half-way: answered or dropped.
  for (std::string raw :
       {std::string("HELLO\r\n\r\n"),
        std::string("POST /v2/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"),
        std::string("POST /v2/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"Pa"),
        std::string("GET /v2/jobs HTTP/1.1\r\n") + std::string(20000, 'X') + "\r\n\r\n"}) {
    RunResult r = run("timeout 10 python3 -c " +
                      q("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
                        "s.sendall(sys.argv[2].encode()); s.shutdown(socket.SHUT_WR); print(s.recv(4096).decode())") +
                      " " + q(d.socket()) + " " + q(raw));
    EXPECT_TRUE(r.out.empty() || r.out.starts_with("HTTP/1.1 4")) << r.out;
  }
  EXPECT_TRUE(d.alive()) << d.log();
  EXPECT_EQ(d.call("GET", "/v2/jobs").body["Jobs"].size(), 0u);
  EXPECT_EQ(sha256(img), before);
}

TEST(Daemon, TheFileCheckedIsTheFileCompacted) {
  // The prepare step opens the image once and the job compacts that open file: swapping the path after
  // the call reaches neither the new target nor anything else.
  TempDir dir;
  std::string a = make_dynamic_vhd(dir, "a.vhd", "DZ");
  std::string b = make_dynamic_vhd(dir, "b.vhd", "DZ");
  std::string link = dir.file("link.vhd");
  ASSERT_EQ(::symlink(a.c_str(), link.c_str()), 0);
  auto prepared = compact::prepare(io::Env::posix(), link, {});
  ASSERT_TRUE(prepared) << prepared.error().what();
  ::unlink(link.c_str());
  ASSERT_EQ(::symlink(b.c_str(), link.c_str()), 0);
  std::string b_before = sha256(b);
  uint64_t a_before = file_size(a);
  auto report = (*prepared)->run(io::Env::posix(), nullptr);
  ASSERT_TRUE(report) << report.error().what();
  prepared->reset();
  EXPECT_EQ(sha256(b), b_before);
  EXPECT_LT(file_size(a), a_before);
}

TEST(Daemon, StateAndValidation) {
  TempDir dir;
  Daemon d(dir);
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZZD");
  json s = d.call("POST", "/v2/ImageManagementService/GetVirtualHardDiskState", json{{"Path", img}}).body;
  ASSERT_EQ(s["ReturnValue"], 0) << s.dump();
  EXPECT_EQ(s["State"]["FileSize"], file_size(img));
  EXPECT_EQ(s["State"]["InUse"], false);
  EXPECT_EQ(s["State"]["MinInternalSize"].get<uint64_t>(), file_size(img) - 2 * kBlockInFile);
  EXPECT_GE(s["State"]["FragmentationPercentage"], 50);  // two of four blocks released, maybe one moved
  json v = d.call("POST", "/v2/ImageManagementService/ValidateVirtualHardDisk", json{{"Path", img}}).body;
  EXPECT_EQ(v["ReturnValue"], 0) << v.dump();
  EXPECT_EQ(v["Valid"], true);
  patch_file(img, 1536, {0x00, 0xff, 0xff, 0x00});  // BAT entry 0 (qemu-img puts the BAT at 1536) past the end
  json bad = d.call("POST", "/v2/ImageManagementService/ValidateVirtualHardDisk", json{{"Path", img}}).body;
  EXPECT_EQ(bad["Valid"], false) << bad.dump();
  EXPECT_EQ(d.call("POST", "/v2/ImageManagementService/GetVirtualHardDiskState", json{{"Path", dir.file("none.vhd")}})
                .body["ReturnValue"],
            32779);
}

TEST(Daemon, CliClientPrintsLikeTheReferenceSamples) {
  TempDir dir;
  Daemon d(dir);
  std::string img = make_slow_vhd(dir, "slow.vhd", 128);
  std::string log = dir.file("client.log");
  RunResult r = run(q(vhdkit_bin()) + " compact --service=" + q(d.socket()) + " --log " + q(log) + " " + q(img));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("In progress... "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(img + " was compacted successfully: 256 MiB -> "), std::string::npos) << r.out;
  auto logged = read_file(log);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(logged.data()), logged.size()), r.out);
  RunResult missing = run(q(vhdkit_bin()) + " compact --service=" + q(d.socket()) + " " + q(dir.file("no.vhd")));
  EXPECT_EQ(missing.status, 3);
  EXPECT_NE(missing.out.find("returned error 32779 (File not found)"), std::string::npos) << missing.out;
  RunResult jobs = run(q(vhdkit_bin()) + " jobs --service " + q(d.socket()));
  EXPECT_EQ(jobs.status, 0) << jobs.err;
  EXPECT_NE(jobs.out.find("Completed"), std::string::npos) << jobs.out;
  EXPECT_NE(jobs.out.find(img), std::string::npos) << jobs.out;
  RunResult down = run(q(vhdkit_bin()) + " compact --service=" + q(dir.file("nobody-here.sock")) + " " + q(img));
  EXPECT_EQ(down.status, 1);
  EXPECT_NE(down.out.find("32777"), std::string::npos) << down.out;
}

TEST(Daemon, TcpPortNeedsTheBearerToken) {
  TempDir dir;
  std::string token = "0123456789abcdef0123456789abcdef";
  write_file(dir.file("token"),
             std::vector<std::byte>(reinterpret_cast<const std::byte*>(token.data()),
                                    reinterpret_cast<const std::byte*>(token.data()) + token.size()));
  ::chmod(dir.file("token").c_str(), 0600);  // a token others may read is refused (daemon_paths_test)
  int port = 20000 + ::getpid() % 20000;
  Daemon d(dir, {"--tcp-port", std::to_string(port), "--token-file", dir.file("token")});
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/v2/jobs";
  RunResult anonymous = run("curl -s -o /dev/null -w '%{http_code}' " + q(url));
  EXPECT_EQ(anonymous.out, "401");
  RunResult wrong = run("curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' " + q(url));
  EXPECT_EQ(wrong.out, "401");
  std::string ok = run_ok("curl -s -H " + q("Authorization: Bearer " + token) + " " + q(url));
  EXPECT_EQ(json::parse(ok)["ReturnValue"], 0);
}

TEST(Daemon, LoadTwoHundredRequestsFromTwentyClientsOnEightImages) {
  TempDir dir;
  Daemon d(dir, {"--queue-limit", "16"});
  std::vector<std::string> images, copies;
  for (int i = 0; i < 8; ++i) {
    images.push_back(make_dynamic_vhd(dir, "img" + std::to_string(i) + ".vhd", "DZDZZD"));
    copies.push_back(keep_copy(images.back()));
  }
  std::atomic<int> started{0}, completed{0}, in_use{0}, not_available{0}, other{0}, bad_end{0};
  std::atomic<int> next{0};
  auto client = [&] {
    for (int n; (n = next.fetch_add(1)) < 200;) {
      const std::string& img = images[n % 8];
      auto r = service::http_call(d.socket(), "POST", kCompact, json{{"Path", img}, {"Mode", n % 2 ? 4 : 0}}.dump());
      if (!r) {
        ++other;
        continue;
      }
      int rv = r->body.value("ReturnValue", 0);
      if (rv == 4096) {
        ++started;
        std::string job = r->body["Job"];
        for (;;) {
          auto j = service::http_call(d.socket(), "GET", job);
          if (!j || j->status != 200) {
            ++bad_end;
            break;
          }
          int state = j->body.value("JobState", 0);
          if (state >= 7) {
            (state == 7 ? completed : bad_end)++;
            break;
          }
          std::this_thread::sleep_for(5ms);
        }
      } else if (rv == 32774) {
        ++in_use;
      } else if (rv == 32777) {
        ++not_available;
      } else {
        ++other;
      }
    }
  };
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int i = 0; i < 20; ++i) clients.emplace_back(client);
  for (auto& t : clients) t.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  long rss = d.peak_rss_kib();
  std::cout << "load: 200 requests, 20 clients, 8 images in " << seconds << " s: " << started << " jobs started ("
            << completed << " completed), " << in_use << " refused in use, " << not_available << " refused queue full, "
            << other << " other; vhdkitd peak RSS " << rss << " KiB\n";
  RecordProperty("load_seconds", std::to_string(seconds));
  RecordProperty("peak_rss_kib", std::to_string(rss));
  EXPECT_EQ(started + in_use + not_available, 200);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(bad_end, 0);
  EXPECT_EQ(completed, started);
  EXPECT_GT(started, 8);
  EXPECT_LT(rss, 100 * 1024) << "vhdkitd's memory grew past 100 MiB";
  EXPECT_TRUE(d.alive());
  for (int i = 0; i < 8; ++i) {
    expect_same_content(copies[i], images[i]);
    EXPECT_EQ(file_size(images[i]), file_size(copies[i]) - 3 * kBlockInFile);
  }
  EXPECT_EQ(d.call("GET", "/v2/jobs").body["Jobs"].size(), static_cast<size_t>(started.load()));
}

}  // namespace
}  // namespace vhdkit::testing
