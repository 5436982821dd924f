// A program running beside a test (qemu-io holding an image open, qemu-nbd serving one, ...), stopped and
// waited for when the object dies, so that no test leaves a process behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace vhdkit::testing {

// How to ask it to stop: by closing its stdin (qemu-io ends at end of input), or by SIGTERM (servers).
enum class StopBy { ClosingStdin, Signal };

class BackgroundProcess {
 public:
  // argv[0] is looked up in PATH. Its stdin is a pipe (send() writes to it); stdout and stderr go to
  // output_path when given, else to /dev/null. A program that cannot be started fails the test.
  explicit BackgroundProcess(std::vector<std::string> argv, std::string output_path = {},
                             StopBy stop_by = StopBy::ClosingStdin);
  ~BackgroundProcess();  // stops it as asked, waits up to 5 s, then SIGTERM, then SIGKILL
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  pid_t pid() const { return pid_; }
  void send(const std::string& text);
  bool running();
  // Stops it now (as the destructor does); returns its exit status, or 128+signal.
  int stop();

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int status_ = -1;
  StopBy stop_by_;
};

// Polls pred every 20 ms until it holds or the timeout passes; returns its last value.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Does any process hold a lock on this file (an entry for its inode in /proc/locks)?
bool file_is_locked(const std::string& path);

}  // namespace vhdkit::testing
