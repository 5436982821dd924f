// SPDX-License-Identifier: Apache-2.0
#include "daemon/own_paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

namespace vhdkit::service {

Status prepare_state_dir(const std::string& dir) {
  if (dir.empty()) return fail(ReturnCode::InvalidParameter, dir, "the state folder is not named");
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  // mkdir honours the mode at once (no window in which others may enter); an existing folder is judged.
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return fail(ReturnCode::AccessDenied, dir, fmt::format("cannot make the state folder: {}", std::strerror(errno)));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0)
    return fail(ReturnCode::AccessDenied, dir, fmt::format("cannot read the state folder: {}", std::strerror(errno)));
  auto refuse = [&](const std::string& why) {
    return fail(ReturnCode::AccessDenied, dir,
                fmt::format("the state folder {}; vhdkitd keeps its job records only in a folder of its own user "
                            "(uid {}) that no other user may write",
                            why, ::geteuid()));
  };
  if (S_ISLNK(st.st_mode)) return refuse("is a symbolic link");
  if (!S_ISDIR(st.st_mode)) return refuse("is not a folder");
  if (st.st_uid != ::geteuid()) return refuse(fmt::format("belongs to uid {}", st.st_uid));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return refuse(fmt::format("may be written by its group or others (mode {:04o})", st.st_mode & 07777));
  return ok();
}

Result<std::string> read_token_file(io::Env& env, const std::string& path) {
  VHDKIT_ASSIGN(auto file, env.open(path, io::Access::ReadOnly, io::Creation::OpenExisting));
  // Judged by the open file's own fields (fstat), so the file judged is the file read.
  VHDKIT_ASSIGN(io::FileIdentity id, file->identity());
  if (id.owner != ::geteuid() && id.owner != 0)
    return fail(ReturnCode::AccessDenied, path,
                fmt::format("the token file belongs to uid {}; it must be this user's (uid {}) or root's", id.owner,
                            ::geteuid()));
  if (id.mode & (S_IRWXG | S_IRWXO))
    return fail(ReturnCode::AccessDenied, path,
                fmt::format("the token file may be read or written by its group or others (mode {:04o}); "
                            "chmod 600 it",
                            id.mode & 07777));
  VHDKIT_ASSIGN(uint64_t size, file->size());
  std::vector<std::byte> bytes(static_cast<size_t>(std::min<uint64_t>(size, 4096)));
  VHDKIT_TRY(file->read_at(0, bytes));
  std::string token(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  token = token.substr(0, token.find_first_of("\r\n"));
  if (token.size() < 16)
    return fail(ReturnCode::InvalidParameter, path, "--tcp-port needs a token of at least 16 characters");
  return token;
}

}  // namespace vhdkit::service
