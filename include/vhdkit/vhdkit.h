// SPDX-License-Identifier: Apache-2.0
// vhdkit's public C++ API: what a program linking libvhdkit may use, and all of it. Standard types only, no
// exception thrown: every fallible call returns vhdkit::api::Result<T> (std::expected), whose Error carries
// Hyper-V's return code (32768 Failed, 32769 Access Denied, 32774 In use, 32779 File not found, ...) and a
// sentence a user can act on. Build with C++23:
//   find_package(vhdkit) + target_link_libraries(app vhdkit::vhdkit), or `pkg-config --cflags --libs vhdkit`.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vhdkit::api {

// The library's version ("0.1.0").
const char* version();

// Msvm_ImageManagementService v2 modes; the values are Hyper-V's.
enum class Mode : uint16_t { Full = 0, Quick = 1, Retrim = 2, Pretrimmed = 3, Prezeroed = 4 };
enum class Action { Compact, DryRun };

struct Error {
  uint32_t return_code = 32768;  // the reference's value (README: "Return values")
  std::string message;           // "disk.vhdx: ..." naming the file and what to do
};
template <class T>
using Result = std::expected<T, Error>;

// What `vhdkit info` and `vhdkit check` say of an image, opened read-only.
struct ImageInfo {
  std::string path;
  std::string format;  // "vhd", "vhdx", "raw"
  std::string type;    // "fixed", "dynamic", "differencing"
  uint64_t virtual_size = 0;
  uint64_t file_size = 0;
  uint32_t block_size = 0;
  uint64_t blocks_total = 0;
  uint64_t blocks_allocated = 0;
  std::optional<std::string> parent_path;
  std::vector<std::string> problems;  // structural problems found by the check; empty: clean
};
Result<ImageInfo> inspect(const std::string& path);

// What one compaction did (or, for a dry run, would do).
struct Report {
  std::string path;
  std::string format;
  std::string mode;       // "full", ...
  std::string mode_note;  // how the mode was carried out ("Full ran as Prezeroed: ...")
  std::string gain_note;  // why nothing (or little) was gained, when so
  bool dry_run = false;
  bool completed = true;  // false: stopped at a safe point on request (running again finishes it)
  uint64_t file_size_before = 0;
  uint64_t file_size_after = 0;
  uint64_t bytes_released = 0;
  uint64_t block_size = 0;
  uint64_t blocks_total = 0;
  uint64_t blocks_released = 0;
  uint64_t blocks_moved = 0;
};

struct CompactOptions {
  Mode mode = Mode::Full;
  Action action = Action::Compact;
  std::optional<std::string> output_path;  // write a compacted copy here; leave the image alone
};

// Called from the compacting thread: progress, and whether to stop at the next safe point.
struct Callbacks {
  std::function<void(uint64_t done, uint64_t total)> progress;
  std::function<bool()> stop_requested;
};

// Compacts on the calling thread. A refusal (in use, a parent in Full mode, damaged, ...) leaves the file
// byte for byte unchanged.
Result<Report> compact(const std::string& path, const CompactOptions& options = {}, const Callbacks& callbacks = {});

// CIM_ConcreteJob.JobState (Hyper-V's values).
enum class JobState : uint16_t {
  New = 2,
  Starting = 3,
  Running = 4,
  Suspended = 5,
  ShuttingDown = 6,
  Completed = 7,
  Terminated = 8,
  Killed = 9,
  Exception = 10
};

struct JobStatus {
  std::string id;
  std::string path;
  JobState state = JobState::New;
  uint16_t percent_complete = 0;
  uint32_t error_code = 0;  // 0 unless the job ended in Exception
  std::string error_description;
  std::optional<Report> report;  // once Completed or Terminated
};

// A compaction running on one of a Service's workers; safe to use from any thread.
class Job {
 public:
  JobStatus status() const;
  JobState wait() const;  // until it has finished
  // RequestStateChange(Terminate): the job stops at its next safe point. Returns the reference's value.
  uint32_t terminate();

 private:
  friend class Service;
  struct Impl;
  explicit Job(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// CompactVirtualHardDisk as a library: the parameters are checked (and the image opened and locked) before
// the call returns; the work then runs as a Job.
class Service {
 public:
  explicit Service(unsigned workers = 0);  // 0: one per processor core
  ~Service();                              // terminates what still runs, each at a safe point
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;
  Result<Job> start_compaction(const std::string& path, const CompactOptions& options = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vhdkit::api
