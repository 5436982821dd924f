#include "child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <string_view>

namespace vhdkit::testing {
namespace {

constexpr std::string_view kEraseLine = "\033[K";

// A new pseudo-terminal as a pipe would be: fds[0] the end we read, fds[1] the program's standard output.
// Output processing is off, so that the program's bytes arrive as it wrote them (no \n -> \r\n).
void open_terminal(int fds[2]) {
  int ours = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (ours < 0 || ::grantpt(ours) != 0 || ::unlockpt(ours) != 0) throw std::runtime_error("posix_openpt failed");
  int theirs = ::open(::ptsname(ours), O_RDWR | O_NOCTTY | O_CLOEXEC);
  termios t{};
  if (theirs < 0 || ::tcgetattr(theirs, &t) != 0) throw std::runtime_error("cannot open the pseudo-terminal");
  t.c_oflag &= ~static_cast<tcflag_t>(OPOST);
  ::tcsetattr(theirs, TCSANOW, &t);
  fds[0] = ours;
  fds[1] = theirs;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& stderr_path, Stdin in, Stdout out)
    : terminal_(out == Stdout::Terminal) {
  int fds[2], ins[2] = {-1, -1};
  if (terminal_) open_terminal(fds);
  else if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  if (in == Stdin::OpenPipe && ::pipe2(ins, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    if (!stderr_path.empty()) {
      int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (err >= 0) ::dup2(err, STDERR_FILENO);
    }
    int input = in == Stdin::OpenPipe ? ins[0] : ::open("/dev/null", O_RDONLY);
    if (input >= 0) ::dup2(input, STDIN_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  out_ = fds[0];
  if (in == Stdin::OpenPipe) {
    ::close(ins[0]);
    in_ = ins[1];
  }
}

ChildProcess::~ChildProcess() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (out_ >= 0) ::close(out_);
  if (in_ >= 0) ::close(in_);
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
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(out_, buf, sizeof buf);
    if (n <= 0) {
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

void ChildProcess::signal(int sig) {
  if (!status_) ::kill(pid_, sig);
}

int ChildProcess::wait() {
  if (status_) return *status_;
  while (read_line(std::chrono::seconds(120))) {
  }
  int st = 0;
  ::waitpid(pid_, &st, 0);
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
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

}  // namespace vhdkit::testing
