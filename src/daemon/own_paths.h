// SPDX-License-Identifier: Apache-2.0
// The files vhdkitd trusts: its state folder (the job database) and the bearer token. Both must be its
// own user's and closed to others, or another local user could swap them or read them.
#pragma once

#include <string>

#include "core/error.h"
#include "io/file.h"

namespace vhdkit::service {

// Creates the state folder (mode 0700) when it is missing; refuses one that is a symbolic link, is not a
// folder, belongs to another user, or that its group or others may write.
Status prepare_state_dir(const std::string& dir);

// The first line of the token file, which must be a regular file of this user (or root) that its group
// and others may not read or write, holding at least 16 characters.
Result<std::string> read_token_file(io::Env& env, const std::string& path);

}  // namespace vhdkit::service
