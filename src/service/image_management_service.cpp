#include "service/image_management_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "core/guid.h"
#include "service/caller.h"

namespace vhdkit::service {
namespace {

constexpr uint16_t kHighestMode = static_cast<uint16_t>(compact::Mode::Prezeroed);

// Hands the compaction's progress to the job and the job's terminate request to the compaction.
class JobObserver final : public compact::Observer {
 public:
  explicit JobObserver(Job& job) : job_(job) {}
  void progress(uint64_t done, uint64_t total) override { job_.progress(done, total); }
  bool stop_requested() override { return job_.terminate_requested(); }

 private:
  Job& job_;
};

// The name under which "one job per image" is enforced: the same file reached by two spellings of its
// path (symlinks, "..") is one image.
std::string image_key(const std::string& path) {
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(path, ec);
  return ec ? path : canonical.string();
}

}  // namespace

ImageManagementService::ImageManagementService(io::Env& env, std::unique_ptr<Engine> engine,
                                               ServiceOptions options)
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

Result<std::optional<io::FileIdentity>> ImageManagementService::check(const CompactRequest& request) {
  const std::string& path = request.path;
  if (path.empty()) return fail(ReturnCode::InvalidParameter, "", "Path is empty: give the image's absolute path");
  if (path.front() != '/') {
    return fail(ReturnCode::InvalidParameter, path,
                "Path must be absolute (a fully qualified path, as CompactVirtualHardDisk requires)");
  }
  if (request.mode > kHighestMode) {
    return fail(ReturnCode::InvalidParameter, path,
                fmt::format("Mode {} is not one of Full 0, Quick 1, Retrim 2, Pretrimmed 3, Prezeroed 4",
                            request.mode));
  }
  // In place, the image must be writable by the caller and free of other writers; into a new file, it is
  // only read.
  bool in_place = request.action == compact::Action::Compact && !request.output_path;
  io::Env& access = request.access_env ? *request.access_env : env_;
  // Read-only first: it tells a missing file, a folder and an unreadable file apart.
  VHDKIT_ASSIGN(auto file, access.open(path, io::Access::ReadOnly, io::Creation::OpenExisting));
  if (in_place) {
    VHDKIT_ASSIGN(file, access.open(path, io::Access::ReadWrite, io::Creation::OpenExisting));
  }
  // What was opened is what gets compacted: the job refuses a path that leads elsewhere later.
  std::optional<io::FileIdentity> checked;
  if (auto id = file->identity()) checked = *id;
  VHDKIT_TRY(file->try_lock(in_place ? io::LockMode::Exclusive : io::LockMode::Shared));
  VHDKIT_TRY(file->unlock());
  file.reset();
  if (auto s = engine_->probe(env_, path); !s && s.error().code() == ReturnCode::NotSupported) return fail(s.error());
  if (request.output_path) {
    const std::string& out = *request.output_path;
    if (out.empty() || out.front() != '/')
      return fail(ReturnCode::InvalidParameter, out, "the output path must be absolute");
    if (image_key(out) == image_key(path))
      return fail(ReturnCode::InvalidParameter, out, "the output must be a different file from the image");
  }
  return checked;
}

CompactResult ImageManagementService::CompactVirtualHardDisk(const CompactRequest& request) {
  auto checked = check(request);
  if (!checked) return CompactResult{checked.error().code(), nullptr, checked.error().what()};
  // The same file reached by two paths (hard links, symlinks, "..") is one image.
  std::string key = *checked ? fmt::format("{}:{}", (*checked)->device, (*checked)->inode) : image_key(request.path);
  auto job = std::make_shared<Job>(Guid::random().to_string_be(), request.path, request.mode, request.action,
                                   options_.time_before_removal, request.owner);
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return CompactResult{ReturnCode::NotAvailable, nullptr, "vhdkit: the service is shutting down"};
    }
    if (busy_images_.contains(key)) {
      return CompactResult{ReturnCode::InUse, nullptr,
                           fmt::format("vhdkit: {}: another job of this service is already compacting this image",
                                       request.path)};
    }
    if (queue_.size() >= options_.queue_limit) {
      return CompactResult{ReturnCode::NotAvailable, nullptr,
                           fmt::format("vhdkit: the job queue is full ({} jobs waiting); try again later",
                                       queue_.size())};
    }
    busy_images_.insert(key);
    if (options_.on_job_change) job->set_listener(options_.on_job_change);
    jobs_.emplace(job->instance_id(), job);
    order_.push_back(job->instance_id());
    Pending pending{job, request, *checked, key};
    pending.request.access_env = nullptr;  // the caller's Env lives only as long as the call
    queue_.push_back(std::move(pending));
  }
  if (options_.on_job_change) options_.on_job_change(job->status());
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
  const auto& request = pending.request;
  if (!job->begin()) return;  // terminated while it waited
  JobObserver observer(*job);
  compact::Options options;
  options.mode = static_cast<compact::Mode>(request.mode);
  options.action = request.action;
  options.output_path = request.output_path;
  if (pending.checked) {
    PinnedEnv pinned(env_, request.path, *pending.checked);
    job->finish(engine_->compact(pinned, request.path, options, &observer));
  } else {
    job->finish(engine_->compact(env_, request.path, options, &observer));
  }
}

bool ImageManagementService::is_busy(const std::string& path) {
  std::string key = image_key(path);
  if (auto file = env_.open(path, io::Access::ReadOnly, io::Creation::OpenExisting)) {
    if (auto id = (*file)->identity()) key = fmt::format("{}:{}", id->device, id->inode);
  }
  std::lock_guard lock(mu_);
  return busy_images_.contains(key);
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
  std::lock_guard lock(mu_);
  std::vector<std::string> removed;
  std::erase_if(order_, [&](const std::string& id) {
    if (!jobs_.at(id)->expired(now)) return false;
    jobs_.erase(id);
    removed.push_back(id);
    return true;
  });
  return removed;
}

}  // namespace vhdkit::service
