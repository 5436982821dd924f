// SPDX-License-Identifier: Apache-2.0
// Msvm_ImageManagementService.CompactVirtualHardDisk, as a library: the caller's parameters are checked
// before anything starts (the reference's synchronous return values), then the compaction runs as a Job on
// a bounded pool of worker threads that callers poll, wait for or terminate.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "compact/compact.h"
#include "core/error.h"
#include "io/file.h"
#include "service/engine.h"
#include "service/job.h"

namespace vhdkit::service {

struct ServiceOptions {
  // Jobs that run at once; 0 means one per processor core.
  unsigned workers = 0;
  // Jobs allowed to wait for a worker; one more is refused with System is not available (32777).
  size_t queue_limit = 64;
  // How long a finished job stays visible.
  std::chrono::seconds time_before_removal{300};
  // Jobs one owner may hold (queued, running, or finished and not yet removed); one more is refused with
  // System is not available (32777). 0: no limit. Requests marked Quota::Exempt are not counted against it.
  size_t jobs_per_owner = 0;
  // Told of every change of every job (the daemon persists them); runs on the changing thread.
  Job::Listener on_job_change;
  // Told of every job removed after its TimeBeforeRemoval, whichever call noticed it (the daemon deletes
  // its record); runs on that thread, outside the service's lock.
  std::function<void(const std::string& instance_id)> on_job_removed;
};

// Whether a request counts against ServiceOptions::jobs_per_owner (the daemon exempts root).
enum class Quota { Applies, Exempt };

struct CompactRequest {
  std::string path;                          // absolute ("a fully qualified path", the reference says)
  compact::Mode mode = compact::Mode::Full;  // a number became a Mode at the boundary (mode_from_number)
  compact::Action action = compact::Action::Compact;
  std::optional<std::string> output_path;  // compact into a new file, leaving `path` alone
  // Declared: the caller says the image is a parent of differencing disks (no Full or Quick for it).
  compact::ParentOfChildren parent_of_children = compact::ParentOfChildren::Detect;
  // The image and its parents are opened through this Env (the daemon's CallerEnv: as the caller), once,
  // during the call; default: the service's own Env.
  io::Env* access_env = nullptr;
  std::optional<uint32_t> owner;  // the caller's uid, recorded with the job
  Quota quota = Quota::Applies;
};

// The method's out-parameters: ReturnValue, and Job when one was started (ReturnValue 4096).
struct CompactResult {
  ReturnCode return_value = ReturnCode::Failed;
  std::shared_ptr<Job> job;
  std::string message;  // why, when no job was started: a sentence naming the file
};

class ImageManagementService {
 public:
  ImageManagementService(io::Env& env, std::unique_ptr<Engine> engine, ServiceOptions options = {});
  // Terminates what is queued or running (each stops at its next safe point) and waits for the workers.
  ~ImageManagementService();
  ImageManagementService(const ImageManagementService&) = delete;
  ImageManagementService& operator=(const ImageManagementService&) = delete;

  // Prepares the compaction on the calling thread (compact::prepare: every refusal is the return value,
  // never a failed job), then queues the job that runs it.
  CompactResult CompactVirtualHardDisk(const CompactRequest& request);
  // The reference's signature: Mode as a number.
  CompactResult CompactVirtualHardDisk(const std::string& path, uint16_t mode);

  // Jobs not yet removed (TimeBeforeRemoval after they finished), oldest first.
  std::vector<std::shared_ptr<Job>> jobs();
  std::shared_ptr<Job> find_job(const std::string& instance_id);
  // Makes a finished job from an earlier run of the service visible again (the daemon's job store).
  void adopt(std::shared_ptr<Job> job);
  // Drops finished jobs whose TimeBeforeRemoval has passed; returns their ids.
  std::vector<std::string> remove_expired();

  unsigned worker_count() const { return static_cast<unsigned>(workers_.size()); }

 private:
  // A job accepted and waiting for a worker, with its image already opened and locked.
  struct Pending {
    std::shared_ptr<Job> job;
    std::unique_ptr<PreparedCompaction> prepared;
    std::string image_key;
  };

  Result<std::unique_ptr<PreparedCompaction>> check(const CompactRequest& request);
  // Why the request's owner may start no more jobs, if so.
  std::optional<std::string> over_quota_locked(const CompactRequest& request);
  void work();
  void run(Pending& pending);

  io::Env& env_;
  std::unique_ptr<Engine> engine_;
  ServiceOptions options_;

  std::mutex mu_;
  std::condition_variable work_ready_;
  bool stopping_ = false;
  std::deque<Pending> queue_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;  // by InstanceID
  std::vector<std::string> order_;                    // InstanceIDs, oldest first
  std::set<std::string> busy_images_;                 // image_key()s with a job queued or running
  std::vector<std::thread> workers_;
};

}  // namespace vhdkit::service
