// Who is asking: the identity of the process at the other end of the daemon's socket, and file access
// decided as that caller (not as the service, which runs as root).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/file.h"

namespace vhdkit::service {

struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups
  int32_t pid = 0;
  std::string describe() const;  // "uid 1000 gid 1000 (pid 4242)"
};

// The peer of a connected Unix socket, from SO_PEERCRED and SO_PEERGROUPS.
Result<Caller> peer_caller(int socket_fd);
// This process's own identity (callers over TCP, who hold the bearer token, act with it).
Caller own_caller();

// Forwards everything to another Env; subclasses change what they need.
class ForwardingEnv : public io::Env {
 public:
  explicit ForwardingEnv(io::Env& inner) : inner_(inner) {}
  Result<std::unique_ptr<io::File>> open(const std::string& path, io::Access access, io::Creation creation) override {
    return inner_.open(path, access, creation);
  }
  bool exists(const std::string& path) override { return inner_.exists(path); }
  Status rename(const std::string& from, const std::string& to) override { return inner_.rename(from, to); }
  Status remove(const std::string& path) override { return inner_.remove(path); }
  Status sync_dir(const std::string& dir) override { return inner_.sync_dir(dir); }
  Status check_writable(const std::string& path) override { return inner_.check_writable(path); }

 protected:
  io::Env& inner_;
};

// Opens files with the caller's file-system identity (fsuid, fsgid and groups, switched for the calling
// thread only and restored after), so that the kernel makes exactly the checks the caller would meet
// opening the file himself: every directory on the way, the file's mode and ACLs. A caller who could not
// open the image for writing gets AccessDenied although the service runs as root.
class CallerEnv final : public ForwardingEnv {
 public:
  CallerEnv(io::Env& inner, Caller caller) : ForwardingEnv(inner), caller_(std::move(caller)) {}
  Result<std::unique_ptr<io::File>> open(const std::string& path, io::Access access, io::Creation creation) override;
  bool exists(const std::string& path) override;
  Status check_writable(const std::string& path) override;

 private:
  Caller caller_;
};

// Opens `path` only if it is still the file that was checked (same device and inode): a symlink or a file
// swapped in after the check is refused before anything is read or written.
class PinnedEnv final : public ForwardingEnv {
 public:
  PinnedEnv(io::Env& inner, std::string path, io::FileIdentity pinned)
      : ForwardingEnv(inner), path_(std::move(path)), pinned_(pinned) {}
  Result<std::unique_ptr<io::File>> open(const std::string& path, io::Access access, io::Creation creation) override;

 private:
  std::string path_;
  io::FileIdentity pinned_;
};

}  // namespace vhdkit::service
