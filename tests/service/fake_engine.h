// SPDX-License-Identifier: Apache-2.0
// A test double for the compaction behind the job service: each call walks through `steps` progress
// reports, pausing before each until the test releases it, and honours terminate requests at every step
// (its "safe points"). It never touches the image, so job-model tests run without any format code.
#pragma once

#include <array>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "service/engine.h"

namespace vhdkit::service::testing {

class FakeEngine final : public Engine {
 public:
  struct Script {
    uint64_t steps = 4;
    std::optional<Error> error;  // returned after the steps instead of a report
  };

  // Behaviour for one image (default: 4 steps, then success).
  void script(const std::string& path, Script s) {
    std::lock_guard lock(mu_);
    scripts_[path] = std::move(s);
  }
  // Lets every running compaction take `n` more steps (or all of them).
  void release(uint64_t n) {
    std::lock_guard lock(mu_);
    released_ += n;
    cv_.notify_all();
  }
  void release_all() { release(1u << 30); }
  // Blocks until `n` compactions have started.
  void wait_started(int n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return started_ >= n; });
  }
  int started() {
    std::lock_guard lock(mu_);
    return started_;
  }
  bool saw_stop_request() {
    std::lock_guard lock(mu_);
    return saw_stop_;
  }

  // As compact::prepare() does, the image is opened through `access` (read-write for an in-place run), so
  // the caller's rights decide; a file that starts with "RAW" is an image the engine cannot compact.
  Result<std::unique_ptr<PreparedCompaction>> prepare(io::Env& access, const std::string& path,
                                                      const compact::Options& options) override {
    bool write = options.action == compact::Action::Compact && !options.output_path;
    VHDKIT_ASSIGN(auto file, access.open(path, write ? io::Access::ReadWrite : io::Access::ReadOnly));
    std::array<std::byte, 3> head{};
    VHDKIT_TRY(file->read_at(0, head));
    if (std::memcmp(head.data(), "RAW", 3) == 0) return fail(ReturnCode::NotSupported, path, "raw image");
    // Locked as compact::prepare locks, and held by the prepared compaction until it has run.
    VHDKIT_TRY(file->try_lock(write ? io::LockMode::Exclusive : io::LockMode::Shared));
    std::optional<io::FileIdentity> id;
    if (auto i = file->identity()) id = *i;
    return std::unique_ptr<PreparedCompaction>(std::make_unique<Prepared>(*this, path, options, id, std::move(file)));
  }

  Result<compact::Report> compact(const std::string& path, const compact::Options& options,
                                  compact::Observer* observer) {
    Script s;
    {
      std::unique_lock lock(mu_);
      ++started_;
      cv_.notify_all();
      if (scripts_.contains(path)) s = scripts_[path];
    }
    compact::Report report;
    report.path = path;
    report.mode = options.mode;
    report.dry_run = options.action == compact::Action::DryRun;
    report.file_size_before = 100 << 20;
    for (uint64_t i = 0; i < s.steps; ++i) {
      observer->progress(i, s.steps);
      std::unique_lock lock(mu_);
      while (released_ == 0) {
        if (observer->stop_requested()) {
          saw_stop_ = true;
          report.outcome = compact::Outcome::Cancelled;
          report.file_size_after = report.file_size_before;
          return report;
        }
        cv_.wait_for(lock, std::chrono::milliseconds(5));
      }
      --released_;
    }
    observer->progress(s.steps, s.steps);
    if (s.error) return std::unexpected(*s.error);
    report.file_size_after = 40 << 20;
    report.bytes_released = report.file_size_before - report.file_size_after;
    return report;
  }

 private:
  class Prepared final : public PreparedCompaction {
   public:
    Prepared(FakeEngine& engine, std::string path, compact::Options options, std::optional<io::FileIdentity> id,
             std::unique_ptr<io::File> file)
        : engine_(engine), path_(std::move(path)), options_(std::move(options)), id_(id), file_(std::move(file)) {}
    std::optional<io::FileIdentity> identity() const override { return id_; }
    disk::VirtualDisk* disk() override { return nullptr; }
    Result<compact::Report> run(compact::Observer* observer) override {
      return engine_.compact(path_, options_, observer);
    }

   private:
    FakeEngine& engine_;
    std::string path_;
    compact::Options options_;
    std::optional<io::FileIdentity> id_;
    std::unique_ptr<io::File> file_;  // holds the lock
  };

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Script> scripts_;
  uint64_t released_ = 0;
  int started_ = 0;
  bool saw_stop_ = false;
};

}  // namespace vhdkit::service::testing
