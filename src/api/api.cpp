// SPDX-License-Identifier: Apache-2.0
// The public API (include/vhdkit/vhdkit.h) over the rooms: thin conversions, nothing decided here.
#include <vhdkit/vhdkit.h>

#include "compact/compact.h"
#include "core/version.h"
#include "image/open_image.h"
#include "io/file.h"
#include "service/engine.h"
#include "service/image_management_service.h"

namespace vhdkit::api {
namespace {

Error to_error(const vhdkit::Error& e) { return Error{static_cast<uint32_t>(e.code()), e.what()}; }

Report to_report(const compact::Report& r) {
  Report out;
  out.path = r.path;
  out.format = std::string(disk::to_string(r.format));
  out.mode = std::string(compact::to_string(r.mode));
  out.mode_note = r.mode_note;
  out.gain_note = r.gain_note;
  out.dry_run = r.dry_run;
  out.completed = r.outcome == compact::Outcome::Completed;
  out.file_size_before = r.file_size_before;
  out.file_size_after = r.file_size_after;
  out.bytes_released = r.bytes_released;
  out.block_size = r.block_size;
  out.blocks_total = r.blocks_total;
  out.blocks_released = r.blocks_released;
  out.blocks_moved = r.blocks_moved;
  return out;
}

compact::Options to_options(const CompactOptions& o) {
  compact::Options out;
  out.mode = static_cast<compact::Mode>(o.mode);
  out.action = o.action == Action::DryRun ? compact::Action::DryRun : compact::Action::Compact;
  out.output_path = o.output_path;
  return out;
}

class CallbackObserver final : public compact::Observer {
 public:
  explicit CallbackObserver(const Callbacks& c) : c_(c) {}
  void progress(uint64_t done, uint64_t total) override {
    if (c_.progress) c_.progress(done, total);
  }
  bool stop_requested() override { return c_.stop_requested && c_.stop_requested(); }

 private:
  const Callbacks& c_;
};

}  // namespace

const char* version() { return kVersion; }

Result<ImageInfo> inspect(const std::string& path) {
  disk::OpenOptions o;
  o.parents = disk::ParentPolicy::Optional;
  auto opened = image::open_image(io::Env::posix(), path, o);
  if (!opened) return std::unexpected(to_error(opened.error()));
  disk::DiskInfo i = (*opened)->info();
  ImageInfo out;
  out.path = path;
  out.format = std::string(disk::to_string(i.format));
  out.type = std::string(disk::to_string(i.type));
  out.virtual_size = i.virtual_size;
  out.file_size = i.file_size;
  out.block_size = i.block_size;
  out.blocks_total = i.block_count;
  out.blocks_allocated = i.blocks_allocated;
  out.parent_path = i.parent_path;
  out.problems = (*opened)->check();
  return out;
}

Result<Report> compact(const std::string& path, const CompactOptions& options, const Callbacks& callbacks) {
  CallbackObserver observer(callbacks);
  auto r = compact::compact_image(io::Env::posix(), path, to_options(options), &observer);
  if (!r) return std::unexpected(to_error(r.error()));
  return to_report(*r);
}

struct Job::Impl {
  std::shared_ptr<service::Job> job;
};

JobStatus Job::status() const {
  service::JobStatus s = impl_->job->status();
  JobStatus out;
  out.id = s.instance_id;
  out.path = s.path;
  out.state = static_cast<JobState>(s.state);
  out.percent_complete = s.percent_complete;
  out.error_code = s.error_code;
  out.error_description = s.error_description;
  if (s.report) out.report = to_report(*s.report);
  return out;
}

JobState Job::wait() const { return static_cast<JobState>(impl_->job->wait()); }

uint32_t Job::terminate() {
  return static_cast<uint32_t>(impl_->job->request_state_change(service::RequestedState::Terminate));
}

struct Service::Impl {
  explicit Impl(unsigned workers)
      : service(io::Env::posix(), service::make_engine(io::Env::posix()), options(workers)) {}
  static service::ServiceOptions options(unsigned workers) {
    service::ServiceOptions o;
    o.workers = workers;
    return o;
  }
  service::ImageManagementService service;
};

Service::Service(unsigned workers) : impl_(std::make_unique<Impl>(workers)) {}
Service::~Service() = default;

Result<Job> Service::start_compaction(const std::string& path, const CompactOptions& options) {
  service::CompactRequest request;
  request.path = path;
  request.mode = static_cast<compact::Mode>(options.mode);
  request.action = options.action == Action::DryRun ? compact::Action::DryRun : compact::Action::Compact;
  request.output_path = options.output_path;
  auto r = impl_->service.CompactVirtualHardDisk(request);
  if (!r.job) return std::unexpected(Error{static_cast<uint32_t>(r.return_value), r.message});
  return Job(std::make_shared<Job::Impl>(Job::Impl{r.job}));
}

}  // namespace vhdkit::api
