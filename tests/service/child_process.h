// A program the test starts and talks to while it runs (vhdkit compact, vhdkitd): its standard output is
// read line by line, signals are sent to it, and it is always reaped (killed if still running) at the end.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace vhdkit::testing {

// Standard input: /dev/null, or a pipe the test keeps open (a program reading commands waits on it).
enum class Stdin { Null, OpenPipe };
// Standard output: a pipe, or a pseudo-terminal (the program sees a terminal: `vhdkit compact` then redraws
// its progress bar every 100 ms instead of printing a line a second). On a terminal, a carriage return ends a
// line too, and so does the end of what one read returns (a redraw has no line end; it is written whole);
// the erase-line sequence (ESC [ K) and empty lines are dropped, so that each redraw reads as a line.
enum class Stdout { Pipe, Terminal };

class ChildProcess {
 public:
  // argv[0] is the program's path. stderr goes to `stderr_path` when given (else inherited).
  explicit ChildProcess(const std::vector<std::string>& argv, const std::string& stderr_path = "",
                        Stdin in = Stdin::Null, Stdout out = Stdout::Pipe);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The next line of standard output, or nullopt at end of output or after `timeout`.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Reads lines until one contains `needle`; returns it (nullopt on timeout or end of output).
  std::optional<std::string> wait_for_line(const std::string& needle,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Everything printed so far (lines read, in order).
  const std::vector<std::string>& lines() const { return lines_; }
  void signal(int sig);
  // Waits for it to end; exit status, or 128+signal. Reads the rest of its output.
  int wait();
  // Peak resident set size in KiB (VmHWM) while it runs, 0 if unknown.
  long peak_rss_kib() const;

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int in_ = -1;
  bool terminal_ = false;
  std::string pending_;
  std::vector<std::string> lines_;
  std::optional<int> status_;
};

}  // namespace vhdkit::testing
