// SPDX-License-Identifier: Apache-2.0
// The job model of ImageManagementService.CompactVirtualHardDisk with a fake compaction: the reference's
// synchronous return values, JobState transitions, PercentComplete, RequestStateChange(Terminate), the
// exception path, the queue limit and TimeBeforeRemoval.
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "fake_engine.h"
#include "service/image_management_service.h"
#include "service/job_json.h"
#include "test_support.h"

namespace vhdkit::service {
namespace {

using namespace std::chrono_literals;
using testing::FakeEngine;
using vhdkit::testing::TempDir;

ServiceOptions options(unsigned workers, size_t queue_limit = 64, std::chrono::seconds removal = 300s) {
  ServiceOptions o;
  o.workers = workers;
  o.queue_limit = queue_limit;
  o.time_before_removal = removal;
  return o;
}

class JobModelTest : public ::testing::Test {
 protected:
  void start(ServiceOptions options = {}) {
    auto engine = std::make_unique<FakeEngine>();
    fake_ = engine.get();
    service_ = std::make_unique<ImageManagementService>(io::Env::posix(), std::move(engine), std::move(options));
  }
  std::string image(const std::string& name, const std::string& content = "conectix-looking image") {
    std::string path = dir_.file(name);
    vhdkit::testing::write_file(
        path, std::vector<std::byte>(reinterpret_cast<const std::byte*>(content.data()),
                                     reinterpret_cast<const std::byte*>(content.data()) + content.size()));
    return path;
  }
  // Lets every fake compaction finish and joins the workers.
  void stop() {
    if (fake_) fake_->release_all();
    service_.reset();
    fake_ = nullptr;  // it was owned by the service
  }
  void TearDown() override { stop(); }

  TempDir dir_;
  FakeEngine* fake_ = nullptr;
  std::unique_ptr<ImageManagementService> service_;
};

TEST_F(JobModelTest, ParameterChecksReturnTheReferenceCodesWithoutStartingAJob) {
  start();
  std::string good = image("a.vhd");
  std::string raw = image("raw.img", "RAW disk");
  std::filesystem::create_directory(dir_.file("folder"));
  struct Case {
    std::string path;
    uint16_t mode;
    ReturnCode expected;
  } cases[] = {
      {"", 0, ReturnCode::InvalidParameter},
      {"relative/a.vhd", 0, ReturnCode::InvalidParameter},
      {good, 5, ReturnCode::InvalidParameter},
      {good, 0xFFFF, ReturnCode::InvalidParameter},
      {dir_.file("missing.vhd"), 0, ReturnCode::FileNotFound},
      {dir_.file("folder"), 0, ReturnCode::InvalidParameter},
      {raw, 0, ReturnCode::NotSupported},
  };
  for (auto& c : cases) {
    auto r = service_->CompactVirtualHardDisk(c.path, c.mode);
    EXPECT_EQ(r.return_value, c.expected) << c.path << " mode " << c.mode << ": " << r.message;
    EXPECT_EQ(r.job, nullptr);
    EXPECT_FALSE(r.message.empty());
  }
  EXPECT_EQ(fake_->started(), 0);
  EXPECT_TRUE(service_->jobs().empty());
}

TEST_F(JobModelTest, ImageLockedByAnotherProgramIsInUse) {
  start();
  std::string path = image("locked.vhd");
  auto holder = io::Env::posix().open(path, io::Access::ReadOnly);
  ASSERT_TRUE(holder);
  ASSERT_TRUE((*holder)->try_lock(io::LockMode::Shared));  // what qemu holds on an image it has open
  auto r = service_->CompactVirtualHardDisk(path, 0);
  EXPECT_EQ(r.return_value, ReturnCode::InUse) << r.message;
  // Reading into a new file only needs a shared lock, which coexists with the holder's.
  CompactRequest into_copy;
  into_copy.path = path;
  into_copy.output_path = dir_.file("copy.vhd");
  auto copy = service_->CompactVirtualHardDisk(into_copy);
  EXPECT_EQ(copy.return_value, ReturnCode::JobStarted) << copy.message;
}

TEST_F(JobModelTest, CallerWithoutWriteAccessIsAccessDenied) {
  start();
  std::string path = image("private.vhd");
  ::chmod(dir_.path().c_str(), 0755);
  ::chmod(path.c_str(), 0644);  // owned by root: readable, not writable, for nobody
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    uint32_t code = 0xFFFFFFFF;
    if (::setgid(65534) == 0 && ::setuid(65534) == 0) {
      ImageManagementService unprivileged(io::Env::posix(), std::make_unique<FakeEngine>(), options(1));
      code = static_cast<uint32_t>(unprivileged.CompactVirtualHardDisk(path, 0).return_value);
    }
    (void)!::write(fds[1], &code, sizeof code);
    ::_exit(0);
  }
  ::close(fds[1]);
  uint32_t code = 0;
  ASSERT_EQ(::read(fds[0], &code, sizeof code), static_cast<ssize_t>(sizeof code));
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  EXPECT_EQ(code, static_cast<uint32_t>(ReturnCode::AccessDenied));
}

TEST_F(JobModelTest, JobRunsToCompletionWithMonotonicProgress) {
  start(options(1));
  std::string path = image("a.vhd");
  auto r = service_->CompactVirtualHardDisk(path, static_cast<uint16_t>(compact::Mode::Quick));
  ASSERT_EQ(r.return_value, ReturnCode::JobStarted) << r.message;
  ASSERT_NE(r.job, nullptr);
  EXPECT_EQ(service_->find_job(r.job->instance_id()), r.job);
  std::vector<uint16_t> seen;
  fake_->wait_started(1);
  for (int step = 0; step < 4; ++step) {
    auto s = r.job->status();
    EXPECT_TRUE(s.state == JobState::Starting || s.state == JobState::Running) << to_string(s.state);
    EXPECT_TRUE(s.cancellable);
    EXPECT_TRUE(s.start_time.has_value());
    seen.push_back(s.percent_complete);
    fake_->release(1);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(r.job->wait(), JobState::Completed);
  auto s = r.job->status();
  EXPECT_EQ(s.percent_complete, 100);
  EXPECT_EQ(s.error_code, 0u);
  EXPECT_FALSE(s.cancellable);
  EXPECT_EQ(s.mode, compact::Mode::Quick);
  ASSERT_TRUE(s.report);
  EXPECT_EQ(s.report->file_size_after, 40u << 20);
  seen.push_back(s.percent_complete);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_LT(seen.front(), 100);
  EXPECT_GT(seen[3], seen[0]);
}

TEST_F(JobModelTest, TerminateStopsARunningJobAtASafePoint) {
  start(options(1));
  auto r = service_->CompactVirtualHardDisk(image("a.vhd"), 0);
  ASSERT_EQ(r.return_value, ReturnCode::JobStarted);
  fake_->wait_started(1);
  EXPECT_EQ(r.job->request_state_change(RequestedState::Terminate), ReturnCode::JobStarted);
  EXPECT_EQ(r.job->wait(), JobState::Terminated);
  EXPECT_TRUE(fake_->saw_stop_request());
  auto s = r.job->status();
  EXPECT_EQ(s.error_code, 0u);
  EXPECT_NE(s.error_description.find("valid"), std::string::npos);
  EXPECT_LT(s.percent_complete, 100);
  // A finished job cannot change state; unknown and unsupported requests say so.
  EXPECT_EQ(r.job->request_state_change(RequestedState::Terminate), ReturnCode::InvalidState);
  EXPECT_EQ(r.job->request_state_change(uint16_t{99}), ReturnCode::InvalidParameter);
  auto r2 = service_->CompactVirtualHardDisk(image("b.vhd"), 0);
  ASSERT_EQ(r2.return_value, ReturnCode::JobStarted);
  EXPECT_EQ(r2.job->request_state_change(RequestedState::Suspend), ReturnCode::NotSupported);
}

TEST_F(JobModelTest, TerminatingAQueuedJobEndsItWithoutRunningIt) {
  start(options(1));
  auto first = service_->CompactVirtualHardDisk(image("a.vhd"), 0);
  fake_->wait_started(1);
  auto queued = service_->CompactVirtualHardDisk(image("b.vhd"), 0);
  ASSERT_EQ(queued.return_value, ReturnCode::JobStarted);
  EXPECT_EQ(queued.job->state(), JobState::New);
  EXPECT_EQ(queued.job->request_state_change(uint16_t{4}), ReturnCode::Completed);
  EXPECT_EQ(queued.job->state(), JobState::Terminated);
  EXPECT_FALSE(queued.job->status().start_time.has_value());
  fake_->release_all();
  EXPECT_EQ(first.job->wait(), JobState::Completed);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(fake_->started(), 1);
}

TEST_F(JobModelTest, FailureDuringTheJobIsAnExceptionWithCodeAndDescription) {
  start(options(1));
  std::string path = image("bad.vhd");
  fake_->script(path,
                FakeEngine::Script{2, Error(ReturnCode::Failed, path, "BAT entry 17 points past the end of the file")});
  fake_->release_all();
  auto r = service_->CompactVirtualHardDisk(path, 0);
  ASSERT_EQ(r.return_value, ReturnCode::JobStarted);
  EXPECT_EQ(r.job->wait(), JobState::Exception);
  auto s = r.job->status();
  EXPECT_EQ(s.error_code, 32768u);
  EXPECT_NE(s.error_description.find("BAT entry 17"), std::string::npos);
  EXPECT_NE(s.error_description.find(path), std::string::npos);
  EXPECT_FALSE(s.report);
}

TEST_F(JobModelTest, OneJobPerImageAndABoundedQueue) {
  start(options(1, 1));
  std::string a = image("a.vhd");
  auto running = service_->CompactVirtualHardDisk(a, 0);
  ASSERT_EQ(running.return_value, ReturnCode::JobStarted);
  fake_->wait_started(1);
  // The same image again, also by another spelling of its path: System is in use.
  EXPECT_EQ(service_->CompactVirtualHardDisk(a, 0).return_value, ReturnCode::InUse);
  EXPECT_EQ(service_->CompactVirtualHardDisk(dir_.path().string() + "/./a.vhd", 1).return_value, ReturnCode::InUse);
  auto queued = service_->CompactVirtualHardDisk(image("b.vhd"), 0);
  ASSERT_EQ(queued.return_value, ReturnCode::JobStarted);
  auto refused = service_->CompactVirtualHardDisk(image("c.vhd"), 0);
  EXPECT_EQ(refused.return_value, ReturnCode::NotAvailable) << refused.message;
  EXPECT_NE(refused.message.find("queue"), std::string::npos);
  fake_->release_all();
  EXPECT_EQ(running.job->wait(), JobState::Completed);
  EXPECT_EQ(queued.job->wait(), JobState::Completed);
  // Once the image is free again it can be compacted again.
  auto again = service_->CompactVirtualHardDisk(a, 0);
  ASSERT_EQ(again.return_value, ReturnCode::JobStarted);
  EXPECT_EQ(again.job->wait(), JobState::Completed);
}

TEST_F(JobModelTest, WorkersRunJobsConcurrently) {
  start(options(3));
  EXPECT_EQ(service_->worker_count(), 3u);
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 3; ++i) jobs.push_back(service_->CompactVirtualHardDisk(image(fmt::format("{}.vhd", i)), 0).job);
  fake_->wait_started(3);  // all three started before any step was released
  fake_->release_all();
  for (auto& j : jobs) EXPECT_EQ(j->wait(), JobState::Completed);
}

TEST_F(JobModelTest, FinishedJobsAreRemovedAfterTimeBeforeRemoval) {
  start(options(1, 64, 0s));
  fake_->release_all();
  auto r = service_->CompactVirtualHardDisk(image("a.vhd"), 0);
  ASSERT_EQ(r.job->wait(), JobState::Completed);
  EXPECT_EQ(r.job->status().time_before_removal, 0s);
  EXPECT_EQ(service_->find_job(r.job->instance_id()), nullptr);
  EXPECT_TRUE(service_->jobs().empty());
}

TEST_F(JobModelTest, FinishedJobsStayForTimeBeforeRemoval) {
  start(options(1));
  fake_->release_all();
  auto r = service_->CompactVirtualHardDisk(image("a.vhd"), 0);
  ASSERT_EQ(r.job->wait(), JobState::Completed);
  EXPECT_EQ(r.job->status().time_before_removal, 300s);
  ASSERT_EQ(service_->jobs().size(), 1u);
  EXPECT_FALSE(r.job->expired(Clock::now() + 299s));
  EXPECT_TRUE(r.job->expired(Clock::now() + 301s));
}

TEST_F(JobModelTest, WaitForTimesOutOnARunningJob) {
  start(options(1));
  auto r = service_->CompactVirtualHardDisk(image("a.vhd"), 0);
  fake_->wait_started(1);
  EXPECT_FALSE(is_finished(r.job->wait_for(30ms)));
  fake_->release_all();
  EXPECT_EQ(r.job->wait_for(10s), JobState::Completed);
}

TEST_F(JobModelTest, ShuttingDownTerminatesRunningJobs) {
  start(options(1));
  auto r = service_->CompactVirtualHardDisk(image("a.vhd"), 0);
  fake_->wait_started(1);
  service_.reset();
  EXPECT_EQ(r.job->state(), JobState::Terminated);
  fake_ = nullptr;
}

TEST_F(JobModelTest, ListenerSeesEveryStateChange) {
  std::mutex mu;
  std::vector<JobState> states;
  auto opts = options(1);
  opts.on_job_change = [&](const JobStatus& s) {
    std::lock_guard lock(mu);
    if (states.empty() || states.back() != s.state) states.push_back(s.state);
  };
  start(opts);
  fake_->release_all();
  auto r = service_->CompactVirtualHardDisk(image("a.vhd"), 0);
  ASSERT_EQ(r.job->wait(), JobState::Completed);
  // The listener runs on the worker after waiters wake; joining the workers makes every call to it happen
  // before we look (and before `mu` and `states` go out of scope).
  stop();
  std::lock_guard lock(mu);
  EXPECT_EQ(states, (std::vector<JobState>{JobState::New, JobState::Starting, JobState::Running, JobState::Completed}));
}

TEST(JobJson, RoundTripsEveryField) {
  Job job("0f3c5e1a-0000-4000-8000-000000000001", "/images/a.vhdx", compact::Mode::Prezeroed, compact::Action::DryRun,
          300s);
  ASSERT_TRUE(job.begin());
  job.progress(1, 3);
  compact::Report report;
  report.path = "/images/a.vhdx";
  report.format = disk::Format::Vhdx;
  report.file_size_before = 1000;
  report.file_size_after = 400;
  report.bytes_released = 600;
  report.blocks_moved = 7;
  job.finish(report);
  JobStatus s = job.status();
  auto j = to_json(s);
  EXPECT_EQ(j["JobState"], 7);
  EXPECT_EQ(j["PercentComplete"], 100);
  EXPECT_EQ(j["TimeBeforeRemoval"], "00000000000500.000000:000");
  auto back = job_status_from_json(j);
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(to_json(*back), j);
  EXPECT_EQ(back->action, compact::Action::DryRun);
  EXPECT_EQ(back->report->blocks_moved, 7u);
  auto bad = j;
  bad["JobState"] = "seven";
  EXPECT_EQ(job_status_from_json(bad).error().code(), ReturnCode::IncorrectDataType);
}

TEST(JobJson, CimTimeFormats) {
  EXPECT_EQ(cim_interval(std::chrono::milliseconds(90061001)), "00000001010101.001000:000");
  auto t = parse_cim_datetime("20261125031415.250000+000");
  ASSERT_TRUE(t);
  EXPECT_EQ(cim_datetime(*t), "20261125031415.250000+000");
  EXPECT_FALSE(parse_cim_datetime("yesterday"));
}

}  // namespace
}  // namespace vhdkit::service
