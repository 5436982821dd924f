// SPDX-License-Identifier: Apache-2.0
#include "daemon/job_store.h"

#include <sqlite3.h>

#include <fmt/format.h>

#include "service/job_json.h"

namespace vhdkit::service {
namespace {

Error db_error(sqlite3* db, const std::string& path, const std::string& what) {
  return Error(ReturnCode::Failed, path, fmt::format("job store: {}: {}", what, db ? sqlite3_errmsg(db) : "?"));
}

// A prepared statement, finalized on every path out.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  sqlite3_stmt* get() const { return stmt_; }
  bool ok() const { return stmt_ != nullptr; }
  void bind(int i, const std::string& text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<JobStore>> JobStore::open(const std::string& state_dir) {
  std::string path = state_dir + "/jobs.sqlite3";
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    Error e = db_error(db, path, "cannot open the database (does the state directory exist and is it writable?)");
    sqlite3_close(db);
    return fail(e);
  }
  std::unique_ptr<JobStore> store(new JobStore(db, path));
  sqlite3_busy_timeout(db, 5000);
  // WAL: a committed record survives the process being killed; NORMAL skips the fsync per commit (a
  // power cut may lose the last records, never corrupt the database).
  VHDKIT_TRY(store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
  VHDKIT_TRY(store->exec(
      "CREATE TABLE IF NOT EXISTS jobs (instance_id TEXT PRIMARY KEY, state INTEGER NOT NULL, record TEXT NOT NULL)"));
  return store;
}

JobStore::~JobStore() { sqlite3_close(db_); }

Status JobStore::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    return fail(ReturnCode::Failed, path_, fmt::format("job store: {}: {}", sql.substr(0, 40), msg));
  }
  return ok();
}

Status JobStore::write(const JobStatus& status) {
  Statement st(db_, "INSERT OR REPLACE INTO jobs (instance_id, state, record) VALUES (?1, ?2, ?3)");
  if (!st.ok()) return fail(db_error(db_, path_, "prepare"));
  st.bind(1, status.instance_id);
  st.bind(2, static_cast<int64_t>(status.state));
  st.bind(3, json_text(to_json(status)));
  if (sqlite3_step(st.get()) != SQLITE_DONE)
    return fail(db_error(db_, path_, "cannot record job " + status.instance_id));
  return ok();
}

Status JobStore::save(const JobStatus& status) {
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  auto it = last_saved_.find(status.instance_id);
  if (it != last_saved_.end() && it->second.state == status.state && now - it->second.when < std::chrono::seconds(1))
    return ok();
  VHDKIT_TRY(write(status));
  if (is_finished(status.state)) {
    last_saved_.erase(status.instance_id);
  } else {
    last_saved_[status.instance_id] = Saved{status.state, now};
  }
  return ok();
}

Status JobStore::remove(const std::string& instance_id) {
  std::lock_guard lock(mu_);
  Statement st(db_, "DELETE FROM jobs WHERE instance_id = ?1");
  if (!st.ok()) return fail(db_error(db_, path_, "prepare"));
  st.bind(1, instance_id);
  if (sqlite3_step(st.get()) != SQLITE_DONE) return fail(db_error(db_, path_, "cannot remove job " + instance_id));
  last_saved_.erase(instance_id);
  return ok();
}

Result<std::vector<JobStatus>> JobStore::recover() {
  std::lock_guard lock(mu_);
  std::vector<JobStatus> jobs;
  {
    Statement st(db_, "SELECT record FROM jobs ORDER BY rowid");
    if (!st.ok()) return fail(db_error(db_, path_, "prepare"));
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      const char* text = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
      auto parsed = job_status_from_json(nlohmann::json::parse(text ? text : "", nullptr, false));
      if (parsed) jobs.push_back(std::move(*parsed));  // an unreadable record is dropped, not fatal
    }
    if (rc != SQLITE_DONE) return fail(db_error(db_, path_, "cannot read the job records"));
  }
  for (auto& s : jobs) {
    if (is_finished(s.state)) continue;
    std::string when = s.state == JobState::New
                           ? "before it started"
                           : fmt::format("while it was {} at {}%", to_string(s.state), s.percent_complete);
    s.error_code = static_cast<uint32_t>(ReturnCode::StatusUnknown);
    s.error_description = fmt::format(
        "vhdkitd stopped (it was killed or crashed) {}. Compaction only changes an image in steps that each "
        "leave it valid, so {} is valid and holds the same data; run the compaction again to finish it.",
        when, s.path);
    s.state = JobState::Exception;
    s.cancellable = false;
    s.time_of_last_state_change = Clock::now();
    VHDKIT_TRY(write(s));
  }
  return jobs;
}

}  // namespace vhdkit::service
