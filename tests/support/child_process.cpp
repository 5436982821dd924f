// SPDX-License-Identifier: Apache-2.0
#include "child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string_view>
#include <thread>

namespace vhdkit::testing {
namespace {

constexpr std::string_view kEraseLine = "\033[K";

// A new pseudo-terminal as a pipe would be: fds[0] the end we read, fds[1] the program's standard output.
// Output processing is off, so that the program's bytes arrive as it wrote them (no \n -> \r\n).
bool open_terminal(int fds[2]) {
  int ours = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (ours < 0 || ::grantpt(ours) != 0 || ::unlockpt(ours) != 0) {
    if (ours >= 0) ::close(ours);
    return false;
  }
  int theirs = ::open(::ptsname(ours), O_RDWR | O_NOCTTY | O_CLOEXEC);
  termios t{};
  if (theirs < 0 || ::tcgetattr(theirs, &t) != 0) {
    ::close(ours);
    if (theirs >= 0) ::close(theirs);
    return false;
  }
  t.c_oflag &= ~static_cast<tcflag_t>(OPOST);
  ::tcsetattr(theirs, TCSANOW, &t);
  fds[0] = ours;
  fds[1] = theirs;
  return true;
}

int status_of(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_path, Stdin in, Stdout out,
                           StopBy stop_by)
    : terminal_(out == Stdout::Terminal), stop_by_(stop_by) {
  const std::string name = argv.empty() ? "(no program)" : argv[0];
  int outs[2] = {-1, -1}, ins[2] = {-1, -1};
  auto give_up = [&](const std::string& why) {
    ADD_FAILURE() << "cannot start " << name << ": " << why;
    for (int fd : {outs[0], outs[1], ins[0], ins[1]})
      if (fd >= 0) ::close(fd);
    status_ = 127;
  };
  if (argv.empty()) {
    give_up("no command");
    return;
  }
  if (terminal_ && !open_terminal(outs)) {
    give_up("no pseudo-terminal");
    return;
  }
  if (out == Stdout::Pipe && ::pipe2(outs, O_CLOEXEC) != 0) {
    give_up("pipe failed");
    return;
  }
  if (in == Stdin::OpenPipe && ::pipe2(ins, O_CLOEXEC) != 0) {
    give_up("pipe failed");
    return;
  }
  // Everything the child needs is made before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const bool log_stdout = out == Stdout::Log && !log_path.empty();
  pid_ = ::fork();
  if (pid_ < 0) {
    give_up("fork failed");
    return;
  }
  if (pid_ == 0) {
    int log = log_path.empty() ? -1 : ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log >= 0) ::dup2(log, STDERR_FILENO);
    if (outs[1] >= 0)
      ::dup2(outs[1], STDOUT_FILENO);
    else if (log_stdout && log >= 0)
      ::dup2(log, STDOUT_FILENO);
    else if (int null = ::open("/dev/null", O_WRONLY); null >= 0)
      ::dup2(null, STDOUT_FILENO);
    int input = in == Stdin::OpenPipe ? ins[0] : ::open("/dev/null", O_RDONLY);
    if (input >= 0) ::dup2(input, STDIN_FILENO);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  if (outs[1] >= 0) ::close(outs[1]);
  out_ = outs[0];
  if (in == Stdin::OpenPipe) {
    ::close(ins[0]);
    in_ = ins[1];
  }
}

ChildProcess::~ChildProcess() {
  stop();
  if (out_ >= 0) ::close(out_);
}

void ChildProcess::close_stdin() {
  if (in_ >= 0) ::close(in_);
  in_ = -1;
}

std::optional<std::string> ChildProcess::read_line(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto nl = terminal_ ? pending_.find_first_of("\r\n") : pending_.find('\n');
    if (nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      if (terminal_) {
        for (auto at = line.find(kEraseLine); at != std::string::npos; at = line.find(kEraseLine))
          line.erase(at, kEraseLine.size());
        if (line.empty()) continue;
      }
      lines_.push_back(line);
      return line;
    }
    if (out_ < 0) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(out_, buf, sizeof buf);
    if (n <= 0) {
      ::close(out_);
      out_ = -1;
      if (pending_.empty()) return std::nullopt;
      pending_ += '\n';  // a last line without its newline
      continue;
    }
    pending_.append(buf, static_cast<size_t>(n));
    // A redraw ends with no line end (the next one starts with \r): on a terminal, what arrived is a line.
    if (terminal_ && pending_.back() != '\n') pending_ += '\r';
  }
}

std::optional<std::string> ChildProcess::wait_for_line(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto line = read_line(left);
    if (!line) return std::nullopt;
    if (line->find(needle) != std::string::npos) return line;
  }
}

void ChildProcess::send(const std::string& text) {
  ASSERT_GE(in_, 0) << "the process's stdin is not an open pipe";
  ASSERT_EQ(::write(in_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
}

void ChildProcess::signal(int sig) {
  if (!status_ && pid_ > 0) ::kill(pid_, sig);
}

bool ChildProcess::running() {
  if (status_ || pid_ <= 0) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == 0) return true;
  status_ = r == pid_ ? status_of(st) : 127;
  return false;
}

int ChildProcess::wait() {
  if (status_) return *status_;
  while (read_line(std::chrono::seconds(120))) {
  }
  int st = 0;
  status_ = ::waitpid(pid_, &st, 0) == pid_ ? status_of(st) : 127;
  return *status_;
}

int ChildProcess::stop() {
  close_stdin();
  if (status_ || pid_ <= 0) return status_.value_or(127);
  using namespace std::chrono_literals;
  if (stop_by_ != StopBy::Killing) {
    if (stop_by_ == StopBy::Signal) signal(SIGTERM);
    if (!wait_until([&] { return !running(); }, 5s)) signal(SIGTERM);
    if (wait_until([&] { return !running(); }, 5s)) return *status_;
  }
  signal(SIGKILL);
  int st = 0;
  status_ = ::waitpid(pid_, &st, 0) == pid_ ? status_of(st) : 127;
  return *status_;
}

long ChildProcess::peak_rss_kib() const {
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string key;
  long value = 0;
  while (in >> key) {
    if (key == "VmHWM:") {
      in >> value;
      return value;
    }
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

bool file_is_locked(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  std::ifstream in("/proc/locks");
  std::string line;
  // "1: OFDLCK ADVISORY  READ -1 fe:00:10953073 100 101": device (hex major:minor) and inode.
  const std::string inode = fmt::format(" {:02x}:{:02x}:{} ", major(st.st_dev), minor(st.st_dev), st.st_ino);
  while (std::getline(in, line)) {
    if (line.find(inode) != std::string::npos) return true;
  }
  return false;
}

}  // namespace vhdkit::testing
