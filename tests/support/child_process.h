// SPDX-License-Identifier: Apache-2.0
// The one way tests start a program and keep it running beside them (vhdkit compact, vhdkitd, qemu-io holding
// an image open, qemu-nbd serving one): its standard output is read line by line, text is sent to its standard
// input, signals are sent to it, and it is always stopped and reaped when the object dies, so that no test
// leaves a process behind. A program that cannot be started fails the test (never throws, never crashes):
// the object then reads as a program that ended at once with status 127.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace vhdkit::testing {

// Standard input: /dev/null, or a pipe the test keeps open (a program reading commands waits on it; send()
// writes to it).
enum class Stdin { Null, OpenPipe };
// Standard output: a pipe, or a pseudo-terminal (the program sees a terminal: `vhdkit compact` then redraws
// its progress bar every 100 ms instead of printing a line a second), or the log file with standard error.
// On a terminal, a carriage return ends a line too, and so does the end of what one read returns (a redraw
// has no line end; it is written whole); the erase-line sequence (ESC [ K) and empty lines are dropped, so
// that each redraw reads as a line.
enum class Stdout { Pipe, Terminal, Log };
// How the destructor (and stop()) ends it: SIGKILL at once; or it is asked first, by closing its stdin
// (qemu-io ends at end of input) or by SIGTERM (servers), and killed only if it is still running 5 s later.
enum class StopBy { Killing, ClosingStdin, Signal };

class ChildProcess {
 public:
  // argv[0] is a path, or a name looked up in PATH. Standard error goes to `log_path` (appended; created when
  // missing) when given, else it is inherited.
  explicit ChildProcess(const std::vector<std::string>& argv, const std::string& log_path = "", Stdin in = Stdin::Null,
                        Stdout out = Stdout::Pipe, StopBy stop_by = StopBy::Killing);
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
  // Writes to its standard input (Stdin::OpenPipe); fails the test when it cannot.
  void send(const std::string& text);
  void signal(int sig);
  // Whether it is still running (reaps it when it has ended).
  bool running();
  // Waits for it to end; exit status, or 128+signal. Reads the rest of its output.
  int wait();
  // Ends it as StopBy says (as the destructor does); exit status, or 128+signal.
  int stop();
  // Peak resident set size in KiB (VmHWM) while it runs, 0 if unknown.
  long peak_rss_kib() const;

 private:
  void close_stdin();

  pid_t pid_ = -1;
  int out_ = -1;
  int in_ = -1;
  bool terminal_ = false;
  StopBy stop_by_;
  std::string pending_;
  std::vector<std::string> lines_;
  std::optional<int> status_;
};

// Polls pred every 20 ms until it holds or the timeout passes; returns its last value.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Does any process hold a lock on this file (an entry for its inode in /proc/locks)?
bool file_is_locked(const std::string& path);

}  // namespace vhdkit::testing
