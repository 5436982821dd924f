// SPDX-License-Identifier: Apache-2.0
// Denial of service, tried against the real daemon: slow image scans beside a job listing, a flood of
// idle connections (over the per-user limit, and into descriptor exhaustion), and the job quota per user.
// Every limit is one of vhdkitd's options (packaging/vhdkitd.conf documents them).
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "daemon_fixture.h"

namespace vhdkit::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kState = "/v2/ImageManagementService/GetVirtualHardDiskState";

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// CPU seconds (user + system) the process has used.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string f;
  long utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::stol(f);
    if (i == 15) {
      stime = std::stol(f);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

TEST(DaemonLimits, AJobListingIsAnsweredWhileFourStateCallsScanOneGibImages) {
  TempDir dir;
  Daemon d(dir, {"--image-threads", "2"});
  std::vector<std::string> images;
  for (int i = 0; i < 4; ++i) images.push_back(make_sparse_allocated_vhd(dir, "big" + std::to_string(i) + ".vhd", 512));
  std::atomic<int> answered{0};
  std::atomic<double> slowest_state{0};
  auto t0 = Clock::now();
  std::vector<std::thread> scans;
  for (const auto& img : images) {
    scans.emplace_back([&, img] {
      auto r = service::http_call(d.socket(), "POST", kState, json{{"Path", img}}.dump());
      if (r && r->body.value("ReturnValue", -1) == 0) ++answered;
      if (r && r->body.value("ReturnValue", -1) != 0) ADD_FAILURE() << img << ": " << r->body.dump();
      slowest_state = std::max(slowest_state.load(), ms_since(t0));
    });
  }
  std::vector<double> took;
  while (answered < 4 && ms_since(t0) < 60000) {
    auto t = Clock::now();
    auto list = d.call("GET", "/v2/jobs");
    EXPECT_EQ(list.status, 200u);
    if (answered < 4) took.push_back(ms_since(t));  // measured while the scans still run
    std::this_thread::sleep_for(20ms);
  }
  for (auto& t : scans) t.join();
  EXPECT_EQ(answered, 4);
  ASSERT_GT(took.size(), 5u) << "the scans ended too soon to measure anything";
  std::sort(took.begin(), took.end());
  double p95 = took[took.size() * 95 / 100], worst = took.back();
  // Within 100 ms, as the issue asks, for 95 in 100 listings; every one within a second. (A listing that
  // waited for a scan would wait seconds; on a machine shared with other builds one may lose the
  // processor for longer than 100 ms, which says nothing of the daemon.)
  EXPECT_LT(p95, 100.0) << "GET /v2/jobs waited for the image scans";
  EXPECT_LT(worst, 1000.0) << "GET /v2/jobs waited for the image scans";
  std::cout << "slow scans: 4 state calls on 1 GiB images took " << slowest_state << " ms; " << took.size()
            << " listings meanwhile: median " << took[took.size() / 2] << " ms, 95th percentile " << p95
            << " ms, slowest " << worst << " ms\n";
  RecordProperty("listing_worst_ms", std::to_string(worst));
}

TEST(DaemonLimits, ImageRequestsBeyondTheQueueAreRefusedAtOnce) {
  TempDir dir;
  Daemon d(dir, {"--image-threads", "1", "--image-queue", "1"});
  std::string a = make_sparse_allocated_vhd(dir, "a.vhd", 512), b = make_sparse_allocated_vhd(dir, "b.vhd", 8),
              c = make_sparse_allocated_vhd(dir, "c.vhd", 8);
  // A runs (its scan holds a shared lock on the image); B waits; C finds the queue full. B and C race to
  // the queue, so one of them (C, nearly always) is the one refused.
  std::optional<service::HttpReply> ra, rb;
  std::thread ta([&] {
    if (auto r = service::http_call(d.socket(), "POST", kState, json{{"Path", a}}.dump())) ra = *r;
  });
  ASSERT_TRUE(wait_until([&] { return file_is_locked(a); }));
  std::thread tb([&] {
    if (auto r = service::http_call(d.socket(), "POST", kState, json{{"Path", b}}.dump())) rb = *r;
  });
  std::this_thread::sleep_for(200ms);
  auto t = Clock::now();
  auto rc = d.call("POST", kState, json{{"Path", c}});
  double took = ms_since(t);
  ta.join();
  tb.join();
  ASSERT_TRUE(ra && rb);
  EXPECT_EQ(ra->body["ReturnValue"], 0) << ra->body.dump();
  int refused = 0;
  for (const service::HttpReply* r : {&*rb, &rc}) {
    if (r->status != 503) continue;
    ++refused;
    EXPECT_EQ(r->body["ReturnValue"], 32777) << r->body.dump();
    EXPECT_NE(r->body.value("Message", "").find("image-queue"), std::string::npos) << r->body.dump();
  }
  EXPECT_EQ(refused, 1) << rb->body.dump() << " " << rc.body.dump();
  if (rc.status == 503) {
    EXPECT_LT(took, 100.0);
  }
}

// A flood of idle connections from one unprivileged user, held by a helper running as that user.
class Flood {
 public:
  Flood(const std::string& user, const std::string& socket, int connections)
      : helper_({"setpriv", "--reuid", user, "--regid", "nogroup", "--clear-groups", "/usr/bin/python3", "-c", kScript,
                 socket, std::to_string(connections)},
                "", Stdin::OpenPipe) {}
  // "held H refused R closed C": connections still open after 4 s, refused by connect(), closed by the
  // daemon (a connection over a limit that sends no request is closed after 2 s).
  std::optional<std::string> report() { return helper_.wait_for_line("held", 60s); }
  void release() { helper_.stop(); }

 private:
  static constexpr const char* kScript = R"(
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
held, refused = [], 0
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sys.argv[1])
    except OSError:
        refused += 1
        continue
    held.append(s)
time.sleep(4.0)
closed = 0
for s in held:
    s.setblocking(False)
    try:
        if s.recv(4096) == b'':
            closed += 1
    except BlockingIOError:
        pass
print('held', len(held) - closed, 'refused', refused, 'closed', closed, flush=True)
sys.stdin.read()
)";
  ChildProcess helper_;
};

TEST(DaemonLimits, AConnectionFloodFromOneUserLeavesTheOthersServed) {
  TempDir dir;
  open_to_everyone(dir);
  Daemon d(dir, {"--max-connections-per-user", "64", "--max-connections", "512"});
  Flood flood("nobody", d.socket(), 1100);
  auto report = flood.report();
  ASSERT_TRUE(report) << d.log();
  std::cout << "connection flood by nobody: " << *report << "\n";
  // Every connection past the 64th was closed; the 64 stay (until the idle timeout).
  int held = 0, refused = 0, closed = 0;
  ASSERT_EQ(std::sscanf(report->c_str(), "held %d refused %d closed %d", &held, &refused, &closed), 3) << *report;
  EXPECT_EQ(held, 64) << *report;
  EXPECT_EQ(closed, 1100 - 64) << *report;
  // The others are answered at once, on every method; nobody's next request is refused with the reason.
  for (int i = 0; i < 5; ++i) {
    auto t = Clock::now();
    auto r = d.call("GET", "/v2/jobs");
    EXPECT_EQ(r.status, 200u);
    EXPECT_LT(ms_since(t), 1000.0);
  }
  auto as_nobody = d.call_as("nobody", "GET", "/v2/jobs");
  EXPECT_EQ(as_nobody.status, 503u) << as_nobody.body.dump();
  EXPECT_NE(as_nobody.body.value("Message", "").find("max-connections-per-user"), std::string::npos)
      << as_nobody.body.dump();
  flood.release();
  ASSERT_TRUE(wait_until([&] { return d.call_as("nobody", "GET", "/v2/jobs").status == 200; }));
  EXPECT_TRUE(d.alive());
}

TEST(DaemonLimits, OutOfDescriptorsTheAcceptLoopBacksOffAndRecovers) {
  TempDir dir;
  open_to_everyone(dir);
  Daemon d(dir, {"--max-connections-per-user", "5000", "--max-connections", "5000"});
  run_ok("prlimit --pid " + std::to_string(d.pid()) + " --nofile=64:64");
  Flood flood("nobody", d.socket(), 300);
  ASSERT_TRUE(flood.report());
  ASSERT_TRUE(wait_until([&] { return d.log().find("cannot accept connections") != std::string::npos; })) << d.log();
  double cpu0 = cpu_seconds(d.pid());
  std::this_thread::sleep_for(2s);
  double cpu = cpu_seconds(d.pid()) - cpu0;
  std::cout << "out of descriptors: vhdkitd used " << cpu << " s of CPU in 2 s while it could not accept\n";
  EXPECT_LT(cpu, 0.2) << "the accept loop spins";
  flood.release();
  ASSERT_TRUE(wait_until([&] {
    auto r = service::http_call(d.socket(), "GET", "/v2/jobs");
    return r && r->status == 200;
  })) << d.log();
  EXPECT_TRUE(d.alive());
}

TEST(DaemonLimits, AUserMayHoldOnlySoManyJobs) {
  TempDir dir;
  open_to_everyone(dir);
  Daemon d(dir, {"--jobs-per-user", "3", "--time-before-removal", "1"});
  std::vector<std::string> images;
  for (int i = 0; i < 5; ++i) {
    images.push_back(make_dynamic_vhd(dir, "img" + std::to_string(i) + ".vhd", "DZ"));
    ::chmod(images.back().c_str(), 0666);
  }
  constexpr const char* kCompact = "/v2/ImageManagementService/CompactVirtualHardDisk";
  std::vector<std::string> jobs;
  for (int i = 0; i < 3; ++i) {
    auto r = d.call_as("nobody", "POST", kCompact, json{{"Path", images[i]}, {"DryRun", true}});
    ASSERT_EQ(r.body["ReturnValue"], 4096) << r.body.dump();
    jobs.push_back(r.body["Job"]);
  }
  for (const auto& j : jobs) d.wait_job(j);
  // Finished jobs count until they are removed: the fourth is refused, saying why; root is not limited.
  std::string sha = sha256(images[3]);
  auto over = d.call_as("nobody", "POST", kCompact, json{{"Path", images[3]}});
  EXPECT_EQ(over.body["ReturnValue"], 32777) << over.body.dump();
  EXPECT_NE(over.body.value("Message", "").find("jobs-per-user"), std::string::npos) << over.body.dump();
  EXPECT_EQ(sha256(images[3]), sha);
  EXPECT_EQ(d.compact(images[4])["ReturnValue"], 4096);
  // Once TimeBeforeRemoval has passed, the user may start jobs again.
  std::this_thread::sleep_for(2500ms);
  auto again = d.call_as("nobody", "POST", kCompact, json{{"Path", images[3]}});
  EXPECT_EQ(again.body["ReturnValue"], 4096) << again.body.dump();
}

}  // namespace
}  // namespace vhdkit::testing
