// SPDX-License-Identifier: Apache-2.0
#include "service/job.h"

#include <fmt/format.h>

#include <algorithm>

namespace vhdkit::service {

std::string_view to_string(JobState s) {
  switch (s) {
    case JobState::New: return "New";
    case JobState::Starting: return "Starting";
    case JobState::Running: return "Running";
    case JobState::Suspended: return "Suspended";
    case JobState::ShuttingDown: return "Shutting Down";
    case JobState::Completed: return "Completed";
    case JobState::Terminated: return "Terminated";
    case JobState::Killed: return "Killed";
    case JobState::Exception: return "Exception";
  }
  return "Unknown";
}

bool is_finished(JobState s) {
  return s == JobState::Completed || s == JobState::Terminated || s == JobState::Killed || s == JobState::Exception;
}

Job::Job(std::string instance_id, std::string path, compact::Mode mode, compact::Action action,
         std::chrono::seconds time_before_removal, std::optional<uint32_t> owner)
    : instance_id_(std::move(instance_id)), path_(std::move(path)) {
  status_.owner = owner;
  status_.instance_id = instance_id_;
  status_.path = path_;
  status_.mode = mode;
  status_.action = action;
  status_.time_before_removal = time_before_removal;
  status_.time_submitted = status_.time_of_last_state_change = Clock::now();
}

Job::Job(JobStatus recorded) : instance_id_(recorded.instance_id), path_(recorded.path), status_(std::move(recorded)) {}

JobStatus Job::status() const {
  std::lock_guard lock(mu_);
  JobStatus copy = status_;
  if (!is_finished(copy.state) && copy.start_time) {
    copy.elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - steady_start_);
  }
  return copy;
}

JobState Job::state() const {
  std::lock_guard lock(mu_);
  return status_.state;
}

JobState Job::wait() const {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return is_finished(status_.state); });
  return status_.state;
}

JobState Job::wait_for(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return is_finished(status_.state); });
  return status_.state;
}

void Job::set_listener(Listener listener) {
  std::lock_guard lock(mu_);
  listener_ = std::move(listener);
}

void Job::set_state_locked(JobState s) {
  status_.state = s;
  status_.time_of_last_state_change = Clock::now();
  if (is_finished(s)) {
    status_.cancellable = false;
    if (status_.start_time) {
      status_.elapsed =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - steady_start_);
    }
  }
}

// Wakes waiters and tells the listener, with the lock released so the listener may take its time.
void Job::notify(std::unique_lock<std::mutex>& lock) {
  JobStatus copy = status_;
  Listener listener = listener_;
  lock.unlock();
  cv_.notify_all();
  if (listener) listener(copy);
}

ReturnCode Job::request_state_change(uint16_t requested) {
  switch (requested) {
    case 2:
    case 3:
    case 4:
    case 5:
    case 6: return request_state_change(static_cast<RequestedState>(requested));
    default: return ReturnCode::InvalidParameter;
  }
}

ReturnCode Job::request_state_change(RequestedState requested) {
  if (requested != RequestedState::Terminate && requested != RequestedState::Kill) return ReturnCode::NotSupported;
  std::unique_lock lock(mu_);
  if (is_finished(status_.state)) return ReturnCode::InvalidState;
  terminate_requested_.store(true, std::memory_order_relaxed);
  if (status_.state == JobState::New) {
    status_.error_description = "terminated on request before it started; the image was not touched";
    set_state_locked(JobState::Terminated);
    notify(lock);
    return ReturnCode::Completed;
  }
  return ReturnCode::JobStarted;
}

bool Job::begin() {
  std::unique_lock lock(mu_);
  if (status_.state != JobState::New) return false;
  status_.start_time = Clock::now();
  steady_start_ = std::chrono::steady_clock::now();
  set_state_locked(JobState::Starting);
  notify(lock);
  return true;
}

void Job::progress(uint64_t done, uint64_t total) {
  std::unique_lock lock(mu_);
  if (status_.state != JobState::Starting && status_.state != JobState::Running) return;
  // 100 is kept for the end: a job whose last byte is processed still has its final flush to make.
  uint64_t pct = total == 0 ? 0 : std::min<uint64_t>(99, (std::min(done, total) * 100) / total);
  bool changed = false;
  if (status_.state == JobState::Starting) {
    set_state_locked(JobState::Running);
    changed = true;
  }
  if (pct > status_.percent_complete) {
    status_.percent_complete = static_cast<uint16_t>(pct);
    changed = true;
  }
  if (changed) notify(lock);
}

void Job::finish(const Result<compact::Report>& result) {
  std::unique_lock lock(mu_);
  if (result) {
    status_.report = *result;
    if (result->outcome == compact::Outcome::Cancelled) {
      status_.error_description =
          "terminated on request at a safe point; the image is valid and running the compaction again "
          "finishes the work";
      set_state_locked(JobState::Terminated);
    } else {
      status_.percent_complete = 100;
      set_state_locked(JobState::Completed);
    }
  } else {
    status_.error_code = static_cast<uint32_t>(result.error().code());
    status_.error_description = result.error().what();
    set_state_locked(JobState::Exception);
  }
  notify(lock);
}

bool Job::expired(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  return is_finished(status_.state) && now - status_.time_of_last_state_change >= status_.time_before_removal;
}

}  // namespace vhdkit::service
