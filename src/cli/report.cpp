// SPDX-License-Identifier: Apache-2.0
#include "cli/report.h"

#include <fmt/format.h>

#include <cstdio>

namespace vhdkit::cli {

int exit_status(ReturnCode code) {
  switch (code) {
    case ReturnCode::Completed:
    case ReturnCode::JobStarted: return 0;
    case ReturnCode::InvalidParameter: return 2;
    case ReturnCode::FileNotFound: return 3;
    case ReturnCode::AccessDenied: return 4;
    case ReturnCode::InUse: return 5;
    case ReturnCode::NotSupported: return 6;
    case ReturnCode::InvalidState: return 7;
    case ReturnCode::OutOfMemory: return 8;
    default: return 1;
  }
}

std::string message(const Error& error) { return "vhdkit: " + error.what(); }

int report(const Error& error) {
  fmt::print(stderr, "{}\n", message(error));
  return exit_status(error.code());
}

}  // namespace vhdkit::cli
