// SPDX-License-Identifier: Apache-2.0
#include "daemon/job_store.h"

#include <sqlite3.h>

#include <fmt/format.h>

#include "service/job_json.h"

namespace vhdkit::service {
namespace {

// A database SQLite cannot read is InvalidState (open() moves it aside); anything else Failed.
Error db_error(sqlite3* db, const std::string& path, const std::string& what) {
  int code = db ? sqlite3_errcode(db) : SQLITE_ERROR;
  bool unreadable = code == SQLITE_NOTADB || code == SQLITE_CORRUPT;
  return Error(unreadable ? ReturnCode::InvalidState : ReturnCode::Failed, path,
               fmt::format("job store: {}: {}", what, db ? sqlite3_errmsg(db) : "?"));
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

// "20261202T021500Z": when a database was moved aside.
std::string timestamp() {
  std::string t = cim_datetime(Clock::now());  // yyyymmddhhmmss.mmmmmm+000
  return t.substr(0, 8) + "T" + t.substr(8, 6) + "Z";
}

}  // namespace

Result<std::unique_ptr<JobStore>> JobStore::open_file(const std::string& path) {
  sqlite3* db = nullptr;
  // NOFOLLOW: a symbolic link at the database's name (or its journal's) is refused, never followed.
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    Error e = db_error(db, path, "cannot open the database (does the state directory exist and is it writable?)");
    sqlite3_close(db);
    return fail(e);
  }
  std::unique_ptr<JobStore> store(new JobStore(db, path));
  sqlite3_busy_timeout(db, 5000);
  // The log and its index stay when the service stops, so that a restart needs no new file: on a full
  // disk the service starts and answers from what is written (new records wait in memory).
  int persist = 1;
  sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  // WAL: a committed record survives the process being killed; NORMAL skips the fsync per commit (a
  // power cut may lose the last records, never corrupt the database).
  VHDKIT_TRY(store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
  {
    Statement check(db, "PRAGMA quick_check");
    if (!check.ok()) return fail(db_error(db, path, "cannot check the database"));
    if (sqlite3_step(check.get()) != SQLITE_ROW) return fail(db_error(db, path, "cannot check the database"));
    const char* verdict = reinterpret_cast<const char*>(sqlite3_column_text(check.get(), 0));
    if (!verdict || std::string(verdict) != "ok") {
      return fail(ReturnCode::InvalidState, path,
                  fmt::format("job store: the database is damaged: {}", verdict ? verdict : "?"));
    }
  }
  VHDKIT_TRY(store->exec(
      "CREATE TABLE IF NOT EXISTS jobs (instance_id TEXT PRIMARY KEY, state INTEGER NOT NULL, record TEXT NOT NULL)"));
  return store;
}

Result<std::unique_ptr<JobStore>> JobStore::open(io::Env& env, const std::string& state_dir) {
  std::string path = state_dir + "/jobs.sqlite3";
  auto store = open_file(path);
  if (store || store.error().code() != ReturnCode::InvalidState) return store;
  // Unreadable: keep it for whoever wants to look, start a new one, and say so.
  std::string aside = fmt::format("{}.corrupt-{}", path, timestamp());
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string from = path + suffix;
    if (env.exists(from)) VHDKIT_TRY(env.rename(from, aside + suffix));
  }
  fmt::print(stderr,
             "vhdkitd: warning: {}; moved it to {} and started a new job store (earlier job records are in it)\n",
             store.error().what(), aside);
  return open_file(path);
}

JobStore::~JobStore() {
  if (!pending_.empty()) {
    fmt::print(stderr, "vhdkitd: warning: {} job records could not be written to {} and are lost\n", pending_.size(),
               path_);
  }
  sqlite3_close(db_);
}

Status JobStore::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    return fail(db_error(db_, path_, fmt::format("{}: {}", sql.substr(0, 40), msg)));
  }
  return ok();
}

// A record moves only forward: New, Starting, Running, then one finished state (their numbers grow in
// that order), so a late save of an earlier state (a thread that lost a race) changes nothing.
Status JobStore::write(const JobStatus& status) {
  Statement st(db_,
               "INSERT INTO jobs (instance_id, state, record) VALUES (?1, ?2, ?3) ON CONFLICT(instance_id) DO UPDATE "
               "SET state = excluded.state, record = excluded.record WHERE excluded.state >= jobs.state");
  if (!st.ok()) return fail(db_error(db_, path_, "prepare"));
  st.bind(1, status.instance_id);
  st.bind(2, static_cast<int64_t>(status.state));
  st.bind(3, json_text(to_json(status)));
  if (sqlite3_step(st.get()) != SQLITE_DONE)
    return fail(db_error(db_, path_, "cannot record job " + status.instance_id));
  return ok();
}

Status JobStore::erase(const std::string& instance_id) {
  Statement st(db_, "DELETE FROM jobs WHERE instance_id = ?1");
  if (!st.ok()) return fail(db_error(db_, path_, "prepare"));
  st.bind(1, instance_id);
  if (sqlite3_step(st.get()) != SQLITE_DONE) return fail(db_error(db_, path_, "cannot remove job " + instance_id));
  return ok();
}

Status JobStore::write_pending_locked() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    Status done = it->second ? write(*it->second) : erase(it->first);
    if (!done) {
      problem_ = done.error().message();
      return done;
    }
    if (it->second && !is_finished(it->second->state))
      last_saved_[it->first] = Saved{it->second->state, std::chrono::steady_clock::now()};
    else
      last_saved_.erase(it->first);
    it = pending_.erase(it);
  }
  problem_.reset();
  return ok();
}

Status JobStore::save(const JobStatus& status) {
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  auto it = last_saved_.find(status.instance_id);
  if (pending_.empty() && it != last_saved_.end() && it->second.state == status.state &&
      now - it->second.when < std::chrono::seconds(1))
    return ok();
  auto& slot = pending_[status.instance_id];
  // The newest fields win, but never an earlier state than one already waiting.
  if (!slot || slot->state <= status.state) slot = status;
  return write_pending_locked();
}

Status JobStore::remove(const std::string& instance_id) {
  std::lock_guard lock(mu_);
  pending_[instance_id] = std::nullopt;
  return write_pending_locked();
}

Status JobStore::retry() {
  std::lock_guard lock(mu_);
  return write_pending_locked();
}

std::optional<std::string> JobStore::problem() {
  std::lock_guard lock(mu_);
  if (pending_.empty()) return std::nullopt;
  return fmt::format(
      "{} job record{} could not be written to {} ({}); kept in memory and written when the store works again "
      "(lost if vhdkitd stops before)",
      pending_.size(), pending_.size() == 1 ? "" : "s", path_, problem_.value_or("?"));
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
    pending_[s.instance_id] = s;
  }
  (void)write_pending_locked();  // a full disk: kept, and visible in problem()
  return jobs;
}

}  // namespace vhdkit::service
