// SPDX-License-Identifier: Apache-2.0
#include "daemon/caller.h"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <mutex>

namespace vhdkit::service {
namespace {

// Switches the calling thread's file-system credentials to the caller's for one scope. The raw system
// calls change this thread only (glibc's wrappers would change every thread of the process).
class FsIdentityScope {
 public:
  explicit FsIdentityScope(const Caller& c) {
    saved_groups_.resize(static_cast<size_t>(::getgroups(0, nullptr)));
    if (!saved_groups_.empty()) ::getgroups(static_cast<int>(saved_groups_.size()), saved_groups_.data());
    std::vector<gid_t> groups(c.groups.begin(), c.groups.end());
    ok_ = ::syscall(SYS_setgroups, groups.size(), groups.data()) == 0;
    ::syscall(SYS_setfsgid, c.gid);
    ::syscall(SYS_setfsuid, c.uid);
    // setfsuid/setfsgid report no errors; asking again (with an invalid id) returns the current one.
    ok_ = ok_ && static_cast<uint32_t>(::syscall(SYS_setfsuid, -1)) == c.uid &&
          static_cast<uint32_t>(::syscall(SYS_setfsgid, -1)) == c.gid;
  }
  ~FsIdentityScope() {
    ::syscall(SYS_setfsuid, ::geteuid());
    ::syscall(SYS_setfsgid, ::getegid());
    ::syscall(SYS_setgroups, saved_groups_.size(), saved_groups_.data());
  }
  bool ok() const { return ok_; }

 private:
  std::vector<gid_t> saved_groups_;
  bool ok_ = false;
};

Error cannot_switch(const std::string& path, const Caller& c) {
  return Error(ReturnCode::AccessDenied, path,
               fmt::format("cannot take the identity of the caller ({}) to check access", c.describe()));
}

}  // namespace

std::string Caller::describe() const { return fmt::format("uid {} gid {} (pid {})", uid, gid, pid); }

Result<Caller> peer_caller(int socket_fd) {
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return fail(ReturnCode::AccessDenied, "",
                fmt::format("cannot learn who is calling (SO_PEERCRED: {})", std::strerror(errno)));
  }
  Caller c{cred.uid, cred.gid, {}, cred.pid};
  std::vector<gid_t> groups(64);
  for (;;) {
    socklen_t bytes = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &bytes) == 0) {
      groups.resize(bytes / sizeof(gid_t));
      break;
    }
    if (errno != ERANGE || groups.size() > 65536) {
      return fail(ReturnCode::AccessDenied, "",
                  fmt::format("cannot learn the caller's groups (SO_PEERGROUPS: {})", std::strerror(errno)));
    }
    groups.resize(bytes / sizeof(gid_t) + 1);
  }
  c.groups.assign(groups.begin(), groups.end());
  return c;
}

Caller own_caller() {
  Caller c{::geteuid(), ::getegid(), {}, ::getpid()};
  std::vector<gid_t> groups(static_cast<size_t>(::getgroups(0, nullptr)));
  if (!groups.empty()) groups.resize(static_cast<size_t>(::getgroups(static_cast<int>(groups.size()), groups.data())));
  c.groups.assign(groups.begin(), groups.end());
  return c;
}

Result<std::unique_ptr<io::File>> CallerEnv::open(const std::string& path, io::Access access, io::Creation creation) {
  FsIdentityScope as_caller(caller_);
  if (!as_caller.ok()) return fail(cannot_switch(path, caller_));
  auto file = inner_.open(path, access, creation);
  if (!file && file.error().code() == ReturnCode::AccessDenied) {
    return fail(ReturnCode::AccessDenied, path,
                fmt::format("the caller ({}) may not open this file {}", caller_.describe(),
                            access == io::Access::ReadWrite ? "for writing" : "for reading"));
  }
  return file;
}

bool CallerEnv::exists(const std::string& path) {
  FsIdentityScope as_caller(caller_);
  return as_caller.ok() && inner_.exists(path);
}

// Resolved as the caller, so that folders the caller may not search stay closed to him.
Result<std::string> CallerEnv::canonical(const std::string& path) {
  FsIdentityScope as_caller(caller_);
  if (!as_caller.ok()) return fail(cannot_switch(path, caller_));
  return inner_.canonical(path);
}

Result<std::vector<std::string>> CallerEnv::list_files(const std::string& dir) {
  FsIdentityScope as_caller(caller_);
  if (!as_caller.ok()) return fail(cannot_switch(dir, caller_));
  return inner_.list_files(dir);
}

// access(2) would judge by the real uid, which is the service's: opening for writing as the caller is the
// question itself.
Status CallerEnv::check_writable(const std::string& path) {
  VHDKIT_ASSIGN(auto file, open(path, io::Access::ReadWrite, io::Creation::OpenExisting));
  if (read_only_ == ReadOnlyFiles::Refuse) {
    VHDKIT_ASSIGN(io::FileIdentity id, file->identity());
    if ((id.mode & 0222) == 0) {
      return fail(ReturnCode::AccessDenied, path,
                  fmt::format("the file is read-only (mode {:04o}), which Hyper-V refuses to compact; make it "
                              "writable, or send \"Force\": true to compact it all the same",
                              id.mode & 07777));
    }
  }
  return ok();
}

}  // namespace vhdkit::service
