// SPDX-License-Identifier: Apache-2.0
#include "service/image_management_service.h"
#include "service/image_state.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/guid.h"

namespace vhdkit::service {
namespace {

// Hands the compaction's progress to the job and the job's terminate request to the compaction.
class JobObserver final : public compact::Observer {
 public:
  explicit JobObserver(Job& job) : job_(job) {}
  void progress(uint64_t done, uint64_t total) override { job_.progress(done, total); }
  bool stop_requested() override { return job_.terminate_requested(); }

 private:
  Job& job_;
};

// The name under which "one job per image" is enforced: the file's device and inode (two spellings of a
// path, hard links, symlinks are one image), or its path for files in memory.
std::string image_key(const std::optional<io::FileIdentity>& id, const std::string& path) {
  return id ? fmt::format("{}:{}", id->device, id->inode) : path;
}

}  // namespace

ImageManagementService::ImageManagementService(io::Env& env, std::unique_ptr<Engine> engine, ServiceOptions options)
    : env_(env), engine_(std::move(engine)), options_(std::move(options)) {
  unsigned n = options_.workers ? options_.workers : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) workers_.emplace_back([this] { work(); });
}

ImageManagementService::~ImageManagementService() {
  std::vector<std::shared_ptr<Job>> live;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [id, job] : jobs_) live.push_back(job);
  }
  for (auto& job : live) job->request_state_change(RequestedState::Terminate);
  work_ready_.notify_all();
  for (auto& t : workers_) t.join();
}

Result<std::unique_ptr<PreparedCompaction>> ImageManagementService::check(const CompactRequest& request) {
  const std::string& path = request.path;
  if (path.empty()) return fail(ReturnCode::InvalidParameter, "", "Path is empty: give the image's absolute path");
  if (path.front() != '/') {
    return fail(ReturnCode::InvalidParameter, path,
                "Path must be absolute (a fully qualified path, as CompactVirtualHardDisk requires)");
  }
  if (request.output_path) {
    const std::string& out = *request.output_path;
    if (out.empty() || out.front() != '/')
      return fail(ReturnCode::InvalidParameter, out, "the output path must be absolute");
  }
  compact::Options options;
  options.mode = request.mode;
  options.action = request.action;
  options.output_path = request.output_path;
  options.parent_of_children = request.parent_of_children;
  io::Env& access = request.access_env ? *request.access_env : env_;
  if (options.action == compact::Action::DryRun) options.reader_lock = reader_lock_for(access, path);
  return engine_->prepare(access, path, options);
}

CompactResult ImageManagementService::CompactVirtualHardDisk(const std::string& path, uint16_t mode) {
  auto typed = compact::mode_from_number(mode, path);
  if (!typed) return CompactResult{typed.error().code(), nullptr, typed.error().what()};
  CompactRequest request;
  request.path = path;
  request.mode = *typed;
  return CompactVirtualHardDisk(request);
}

std::optional<std::string> ImageManagementService::over_quota_locked(const CompactRequest& request) {
  if (options_.jobs_per_owner == 0 || !request.owner || request.quota == Quota::Exempt) return std::nullopt;
  size_t held = 0;
  for (const auto& [id, job] : jobs_)
    if (job->status().owner == request.owner) ++held;
  if (held < options_.jobs_per_owner) return std::nullopt;
  return fmt::format(
      "uid {} holds {} jobs (queued, running, or finished in the last TimeBeforeRemoval), its limit "
      "(jobs-per-user); try again once some have been removed",
      *request.owner, held);
}

CompactResult ImageManagementService::CompactVirtualHardDisk(const CompactRequest& request) {
  // Counted before the image is opened (no work for a refused caller), and again below, under the lock
  // that queues the job.
  remove_expired();
  {
    std::lock_guard lock(mu_);
    if (auto why = over_quota_locked(request)) return CompactResult{ReturnCode::NotAvailable, nullptr, *why};
  }
  auto prepared = check(request);
  if (!prepared) return CompactResult{prepared.error().code(), nullptr, prepared.error().what()};
  std::string key = image_key((*prepared)->identity(), request.path);
  auto job = std::make_shared<Job>(Guid::random().to_string_be(), request.path, request.mode, request.action,
                                   options_.time_before_removal, request.owner);
  // Recorded as New before any worker can see it: a later record (Completed) can never be overwritten by
  // this one. A job refused below has its record deleted again.
  if (options_.on_job_change) options_.on_job_change(job->status());
  std::optional<std::pair<ReturnCode, std::string>> refused;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      refused.emplace(ReturnCode::NotAvailable, "the service is shutting down");
    } else if (busy_images_.contains(key)) {
      refused.emplace(ReturnCode::InUse,
                      fmt::format("{}: another job of this service is already compacting this image", request.path));
    } else if (auto why = over_quota_locked(request)) {
      refused.emplace(ReturnCode::NotAvailable, *why);
    } else if (queue_.size() >= options_.queue_limit) {
      refused.emplace(ReturnCode::NotAvailable,
                      fmt::format("the job queue is full ({} jobs waiting); try again later", queue_.size()));
    } else {
      busy_images_.insert(key);
      if (options_.on_job_change) job->set_listener(options_.on_job_change);
      jobs_.emplace(job->instance_id(), job);
      order_.push_back(job->instance_id());
      queue_.push_back(Pending{job, std::move(*prepared), key});
    }
  }
  if (refused) {
    if (options_.on_job_removed) options_.on_job_removed(job->instance_id());  // outside the service's lock
    return CompactResult{refused->first, nullptr, refused->second};
  }
  work_ready_.notify_one();
  return CompactResult{ReturnCode::JobStarted, job, ""};
}

void ImageManagementService::work() {
  for (;;) {
    Pending pending;
    {
      std::unique_lock lock(mu_);
      work_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to finish
      pending = std::move(queue_.front());
      queue_.pop_front();
    }
    run(pending);
    std::lock_guard lock(mu_);
    busy_images_.erase(pending.image_key);
  }
}

void ImageManagementService::run(Pending& pending) {
  const auto& job = pending.job;
  if (job->begin()) {  // not terminated while it waited
    JobObserver observer(*job);
    // Nothing below should throw (the library returns Status); should something still (bad_alloc), the
    // job fails with the reason instead of the exception ending the process and every user's jobs.
    Result<compact::Report> result = fail(ReturnCode::Failed, job->path(), "the compaction did not run");
    try {
      result = pending.prepared->run(&observer);
    } catch (const std::exception& e) {
      result = fail(ReturnCode::Failed, job->path(), fmt::format("vhdkit could not finish the job: {}", e.what()));
    }
    job->finish(result);
  }
  pending.prepared.reset();  // closes the image (and its lock) before the image counts as free again
}

std::vector<std::shared_ptr<Job>> ImageManagementService::jobs() {
  remove_expired();
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Job>> out;
  for (auto& id : order_) out.push_back(jobs_.at(id));
  return out;
}

std::shared_ptr<Job> ImageManagementService::find_job(const std::string& instance_id) {
  remove_expired();
  std::lock_guard lock(mu_);
  auto it = jobs_.find(instance_id);
  return it == jobs_.end() ? nullptr : it->second;
}

void ImageManagementService::adopt(std::shared_ptr<Job> job) {
  std::lock_guard lock(mu_);
  if (jobs_.emplace(job->instance_id(), job).second) order_.push_back(job->instance_id());
}

std::vector<std::string> ImageManagementService::remove_expired() {
  auto now = Clock::now();
  std::vector<std::string> removed;
  {
    std::lock_guard lock(mu_);
    std::erase_if(order_, [&](const std::string& id) {
      if (!jobs_.at(id)->expired(now)) return false;
      jobs_.erase(id);
      removed.push_back(id);
      return true;
    });
  }
  if (options_.on_job_removed)
    for (const auto& id : removed) options_.on_job_removed(id);
  return removed;
}

}  // namespace vhdkit::service
