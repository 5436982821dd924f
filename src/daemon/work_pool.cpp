// SPDX-License-Identifier: Apache-2.0
#include "daemon/work_pool.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

namespace vhdkit::service {

WorkPool::WorkPool(unsigned threads, size_t queue_limit) : queue_limit_(queue_limit) {
  for (unsigned i = 0; i < std::max(1u, threads); ++i) threads_.emplace_back([this] { loop(); });
}

WorkPool::~WorkPool() {
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  ready_.notify_all();
  for (auto& t : threads_) t.join();
}

bool WorkPool::try_post(std::function<void()> work) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= queue_limit_) return false;
    queue_.push_back(std::move(work));
  }
  ready_.notify_one();
  return true;
}

void WorkPool::loop() {
  // Below the HTTP threads in the scheduler's eyes (Linux applies nice per thread): on a busy machine a
  // job listing still wins the processor from a scan. Lowering one's own priority needs no privilege.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
  for (;;) {
    std::function<void()> work;
    {
      std::unique_lock lock(mu_);
      ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

}  // namespace vhdkit::service
