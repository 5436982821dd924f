// SPDX-License-Identifier: Apache-2.0
// Who is asking: the identity of the process at the other end of the daemon's socket, and file access
// decided as that caller (not as the service, which runs as root).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/file.h"
#include "io/forwarding_env.h"

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

// Opens files with the caller's file-system identity (fsuid, fsgid and groups, switched for the calling
// thread only and restored after), so that the kernel makes exactly the checks the caller would meet
// opening the file himself: every directory on the way, the file's mode and ACLs. A caller who could not
// open the image for writing gets AccessDenied although the service runs as root.
// A file whose mode grants no write permission at all (0444) is read-only as Hyper-V sees it: refused for
// compaction in place, even to a caller (root) whom the kernel would let write it, unless he forces it.
enum class ReadOnlyFiles { Refuse, Allow };

class CallerEnv final : public io::ForwardingEnv {
 public:
  CallerEnv(io::Env& inner, Caller caller, ReadOnlyFiles read_only = ReadOnlyFiles::Refuse)
      : ForwardingEnv(inner), caller_(std::move(caller)), read_only_(read_only) {}
  Result<std::unique_ptr<io::File>> open(const std::string& path, io::Access access, io::Creation creation) override;
  bool exists(const std::string& path) override;
  Status check_writable(const std::string& path) override;
  Result<std::string> canonical(const std::string& path) override;
  // The folder listed as the caller (the parent rule looks for children beside an image): a caller who may
  // not read the folder learns nothing of what is in it.
  Result<std::vector<std::string>> list_files(const std::string& dir) override;

 private:
  Caller caller_;
  ReadOnlyFiles read_only_;
};

}  // namespace vhdkit::service
