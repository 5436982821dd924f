// SPDX-License-Identifier: Apache-2.0
// vhdkitd's job records, in SQLite (state-dir/jobs.sqlite3), so that a restarted service still answers for
// the jobs it had: a finished job keeps its outcome until TimeBeforeRemoval, and a job that was queued or
// running when the service died is reported as Exception with a description that says so.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "service/job.h"

struct sqlite3;

namespace vhdkit::service {

class JobStore {
 public:
  // Opens (creating) the database in `state_dir`, which must exist.
  static Result<std::unique_ptr<JobStore>> open(const std::string& state_dir);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Records the job's fields. State changes are written at once; progress at most once a second a job.
  Status save(const JobStatus& status);
  Status remove(const std::string& instance_id);

  // The jobs an earlier run of the service recorded. Those that had not finished are rewritten as
  // Exception (10) with ErrorCode Status is unknown (32771) and a description naming what happened.
  Result<std::vector<JobStatus>> recover();

  const std::string& path() const { return path_; }

 private:
  JobStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status exec(const std::string& sql);
  Status write(const JobStatus& status);

  std::mutex mu_;
  sqlite3* db_;
  std::string path_;
  struct Saved {
    JobState state;
    std::chrono::steady_clock::time_point when;
  };
  std::map<std::string, Saved> last_saved_;
};

}  // namespace vhdkit::service
