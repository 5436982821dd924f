// SPDX-License-Identifier: Apache-2.0
// A fixed set of threads for image work (the prepare step of a compaction, dry runs, state and validation
// scans), apart from the HTTP threads and at a lower scheduling priority (nice 10): a request that reads a
// 1 TiB image must not delay the reply to a job listing. The queue is bounded; a full queue refuses the
// work at once, so the caller can say so.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vhdkit::service {

class WorkPool {
 public:
  WorkPool(unsigned threads, size_t queue_limit);
  // Finishes what is running, drops what waits (its closures are destroyed unrun), joins the threads.
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Queues `work`; false, without queueing it, when `queue_limit` items already wait.
  bool try_post(std::function<void()> work);
  size_t queue_limit() const { return queue_limit_; }

 private:
  void loop();

  const size_t queue_limit_;
  std::mutex mu_;
  std::condition_variable ready_;
  bool stopping_ = false;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
};

}  // namespace vhdkit::service
