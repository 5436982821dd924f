#include "background_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace vhdkit::testing {

BackgroundProcess::BackgroundProcess(std::vector<std::string> argv, std::string output_path, StopBy stop_by)
    : stop_by_(stop_by) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe failed";
    return;
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::string out = output_path.empty() ? "/dev/null" : output_path;
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(fds[0], 0);
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o >= 0) {
      ::dup2(o, 1);
      ::dup2(o, 2);
    }
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[0]);
  stdin_ = fds[1];
  if (pid_ < 0) ADD_FAILURE() << "fork failed for " << argv[0];
}

BackgroundProcess::~BackgroundProcess() { stop(); }

void BackgroundProcess::send(const std::string& text) {
  ASSERT_GE(stdin_, 0) << "the process's stdin is closed";
  ASSERT_EQ(::write(stdin_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
}

bool BackgroundProcess::running() {
  if (pid_ <= 0) return false;
  int st;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == 0) return true;
  if (r == pid_) status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  pid_ = -1;
  return false;
}

int BackgroundProcess::stop() {
  if (stdin_ >= 0) {
    ::close(stdin_);
    stdin_ = -1;
  }
  using namespace std::chrono_literals;
  for (int sig : {stop_by_ == StopBy::Signal ? SIGTERM : 0, SIGTERM, SIGKILL}) {
    if (sig && pid_ > 0) ::kill(pid_, sig);
    if (wait_until([&] { return !running(); }, 5s)) break;
  }
  return status_;
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
