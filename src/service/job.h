// SPDX-License-Identifier: Apache-2.0
// A compaction job as CIM_ConcreteJob / Msvm_ConcreteJob describes it: what Hyper-V's
// CompactVirtualHardDisk hands back in its Job out-parameter. One Job is shared by the worker that runs it
// and by every caller that polls, waits for or terminates it; all members are safe to call from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "compact/compact.h"
#include "core/error.h"

namespace vhdkit::service {

// CIM_ConcreteJob.JobState (values are the reference's).
enum class JobState : uint16_t {
  New = 2,
  Starting = 3,
  Running = 4,
  Suspended = 5,
  ShuttingDown = 6,
  Completed = 7,
  Terminated = 8,
  Killed = 9,
  Exception = 10,
};
std::string_view to_string(JobState s);  // "New", "Running", ... as CIM spells them
bool is_finished(JobState s);            // Completed, Terminated, Killed, Exception

// CIM_ConcreteJob.RequestStateChange(RequestedState): Start 2, Suspend 3, Terminate 4, Kill 5, Service 6.
// Only Terminate (and Kill, treated the same: compaction always stops at a safe point) is supported.
enum class RequestedState : uint16_t { Start = 2, Suspend = 3, Terminate = 4, Kill = 5, Service = 6 };

using Clock = std::chrono::system_clock;

// A consistent copy of a job's fields, taken under the job's lock.
struct JobStatus {
  std::string instance_id;
  std::string path;
  compact::Mode mode = compact::Mode::Full;
  compact::Action action = compact::Action::Compact;
  JobState state = JobState::New;
  uint16_t percent_complete = 0;
  uint32_t error_code = 0;  // 0 unless the job ended in Exception
  std::string error_description;
  bool cancellable = true;
  Clock::time_point time_submitted{};
  std::optional<Clock::time_point> start_time;
  std::chrono::milliseconds elapsed{0};  // running time so far, frozen when the job ends
  Clock::time_point time_of_last_state_change{};
  std::chrono::seconds time_before_removal{300};
  std::optional<compact::Report> report;  // once Completed or Terminated
  std::optional<uint32_t> owner;          // uid of the caller who started it, when known
};

class Job {
 public:
  Job(std::string instance_id, std::string path, compact::Mode mode, compact::Action action,
      std::chrono::seconds time_before_removal, std::optional<uint32_t> owner = std::nullopt);
  // A job read back from the job store: its fields as recorded, and never runs again.
  explicit Job(JobStatus recorded);

  const std::string& instance_id() const { return instance_id_; }
  const std::string& path() const { return path_; }

  JobStatus status() const;
  JobState state() const;

  // Blocks until the job has finished; returns the final state.
  JobState wait() const;
  // Blocks at most `timeout`; returns the state then.
  JobState wait_for(std::chrono::milliseconds timeout) const;

  // RequestStateChange. Terminate on a queued job ends it at once (Completed with No Error); on a
  // starting or running job it asks the worker to stop at the next safe point (Job Started, 4096: the
  // transition is under way); on a finished job it is InvalidState. Other requests are NotSupported.
  ReturnCode request_state_change(RequestedState requested);
  ReturnCode request_state_change(uint16_t requested);  // range-checked: unknown values are InvalidParameter
  bool terminate_requested() const { return terminate_requested_.load(std::memory_order_relaxed); }

  // Called by the worker that runs the job.
  bool begin();                                  // New -> Starting; false if the job was terminated while queued
  void progress(uint64_t done, uint64_t total);  // Starting/Running: moves PercentComplete forward only
  void finish(const Result<compact::Report>& result);

  // Called whenever a job's fields change (persisting them); runs outside the job's lock.
  using Listener = std::function<void(const JobStatus&)>;
  void set_listener(Listener listener);

  // True once the job has finished and TimeBeforeRemoval has passed since.
  bool expired(Clock::time_point now) const;

 private:
  void set_state_locked(JobState s);
  void notify(std::unique_lock<std::mutex>& lock);

  const std::string instance_id_;
  const std::string path_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  JobStatus status_;
  std::chrono::steady_clock::time_point steady_start_{};
  std::atomic<bool> terminate_requested_{false};
  Listener listener_;
};

}  // namespace vhdkit::service
