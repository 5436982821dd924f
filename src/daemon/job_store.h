// SPDX-License-Identifier: Apache-2.0
// vhdkitd's job records, in SQLite (state-dir/jobs.sqlite3), so that a restarted service still answers for
// the jobs it had: a finished job keeps its outcome until TimeBeforeRemoval, and a job that was queued or
// running when the service died is reported as Exception with a description that says so.
//
// A bad day does not stop the service: a record that cannot be written (a full disk) is kept in memory,
// the problem is reported (problem()), and the record is written once a later write succeeds; a database
// SQLite cannot read is moved aside (jobs.sqlite3.corrupt-TIME) and a new one started. A record never
// moves back to an earlier state, whichever thread saves last.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/file.h"
#include "service/job.h"

struct sqlite3;

namespace vhdkit::service {

class JobStore {
 public:
  // Opens (creating) the database in `state_dir`, which must exist; never through a symbolic link. A
  // file that is not a database SQLite can read is renamed aside through `env` and a warning printed.
  static Result<std::unique_ptr<JobStore>> open(io::Env& env, const std::string& state_dir);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Records the job's fields. State changes are written at once; progress at most once a second a job.
  // A record that cannot be written is kept and written by a later call (or retry()); the error is
  // returned and kept in problem() until then.
  Status save(const JobStatus& status);
  Status remove(const std::string& instance_id);
  // Writes the records kept in memory; ok when none are left.
  Status retry();
  // Why some records are only in memory, if they are: a sentence for the job listing and the log.
  std::optional<std::string> problem();

  // The jobs an earlier run of the service recorded. Those that had not finished are rewritten as
  // Exception (10) with ErrorCode Status is unknown (32771) and a description naming what happened.
  Result<std::vector<JobStatus>> recover();

  const std::string& path() const { return path_; }

 private:
  JobStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  static Result<std::unique_ptr<JobStore>> open_file(const std::string& path);
  Status exec(const std::string& sql);
  Status write(const JobStatus& status);
  Status erase(const std::string& instance_id);
  Status write_pending_locked();

  std::mutex mu_;
  sqlite3* db_;
  std::string path_;
  struct Saved {
    JobState state;
    std::chrono::steady_clock::time_point when;
  };
  std::map<std::string, Saved> last_saved_;
  // Not yet written: the latest record of a job (nullopt: its deletion), in the order they came.
  std::map<std::string, std::optional<JobStatus>> pending_;
  std::optional<std::string> problem_;
};

}  // namespace vhdkit::service
