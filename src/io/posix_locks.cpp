// SPDX-License-Identifier: Apache-2.0
#include "io/posix_locks.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace vhdkit::io::posix {
namespace {

// qemu's lock bytes (see the header): base + permission bit.
constexpr off_t kPermBase = 100;
constexpr off_t kSharedBase = 200;
constexpr off_t kConsistentRead = 0, kWrite = 1, kResize = 3;

int set_lock(int fd, short type, off_t start, off_t len) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;  // 0: to the end of the file, however far it grows
  return ::fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : errno;
}

// Does another open file description hold any lock on this byte?
bool locked_by_others(int fd, off_t byte) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  return ::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

bool is_conflict(int err) { return err == EAGAIN || err == EACCES; }

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status in_use(int fd, const std::string& path, std::string_view why) {
  std::string holders = lock_holders(fd);
  std::string who = holders.empty() ? "another program (it holds a lock on the file; which one could not be "
                                      "found, perhaps another user's)"
                                    : holders;
  return fail(ReturnCode::InUse, path, fmt::format("the image is in use by {}{}", who, why));
}

Error lock_error(const std::string& path, const char* what, int err) {
  return Error(ReturnCode::Failed, path, fmt::format("{} failed: {}", what, std::strerror(err)));
}

}  // namespace

std::string lock_holders(int fd) {
  namespace fs = std::filesystem;
  struct stat me;
  if (::fstat(fd, &me) != 0) return {};
  const pid_t self = ::getpid();
  std::vector<std::string> locking, opening;
  std::error_code ec;
  for (auto proc = fs::directory_iterator("/proc", ec); !ec && proc != fs::directory_iterator(); proc.increment(ec)) {
    const std::string name = proc->path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    bool opens = false, locks = false;
    std::error_code fd_ec;  // another user's process: not readable, skip it
    for (auto e = fs::directory_iterator(proc->path() / "fd", fd_ec); !fd_ec && e != fs::directory_iterator();
         e.increment(fd_ec)) {
      struct stat st;
      if (::stat(e->path().c_str(), &st) != 0 || st.st_dev != me.st_dev || st.st_ino != me.st_ino) continue;
      const std::string fd_name = e->path().filename().string();
      if (pid == self && fd_name == std::to_string(fd)) continue;  // the asking open itself
      opens = true;
      std::string info = slurp(proc->path() / "fdinfo" / fd_name);
      if (info.starts_with("lock:") || info.find("\nlock:") != std::string::npos) locks = true;
    }
    if (!opens) continue;
    std::string comm = slurp(proc->path() / "comm");
    while (!comm.empty() && (comm.back() == '\n' || comm.back() == ' ')) comm.pop_back();
    std::string label = fmt::format("{} (pid {}{})", comm.empty() ? "?" : comm, pid,
                                    pid == self ? ", another open in this program" : "");
    (locks ? locking : opening).push_back(std::move(label));
  }
  const auto& named = locking.empty() ? opening : locking;
  std::string out;
  for (const auto& n : named) out += (out.empty() ? "" : ", ") + n;
  return out;
}

Status try_lock(int fd, const std::string& path, LockMode mode) {
  if (mode == LockMode::Exclusive) {
    int err = set_lock(fd, F_WRLCK, 0, 0);
    if (is_conflict(err)) return in_use(fd, path, "");
    if (err) return fail(lock_error(path, "lock", err));
    return ok();
  }
  // Shared: drop an exclusive lock we may hold, refuse while someone writes, then say what we need.
  // NoWriter: only the refusal.
  if (int err = set_lock(fd, F_UNLCK, 0, 0)) return fail(lock_error(path, "unlock", err));
  for (off_t perm : {kWrite, kResize}) {
    if (locked_by_others(fd, kPermBase + perm)) return in_use(fd, path, ", which has it open for writing");
  }
  if (mode == LockMode::NoWriter) return ok();
  for (off_t byte : {kPermBase + kConsistentRead, kSharedBase + kWrite, kSharedBase + kResize}) {
    int err = set_lock(fd, F_RDLCK, byte, 1);
    if (!err) continue;
    (void)set_lock(fd, F_UNLCK, 0, 0);
    if (is_conflict(err)) return in_use(fd, path, "");
    return fail(lock_error(path, "lock", err));
  }
  return ok();
}

Status unlock(int fd, const std::string& path) {
  if (int err = set_lock(fd, F_UNLCK, 0, 0)) return fail(lock_error(path, "unlock", err));
  return ok();
}

}  // namespace vhdkit::io::posix
