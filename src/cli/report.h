// SPDX-License-Identifier: Apache-2.0
// How every subcommand reports a failure: "vhdkit: PATH: problem" on standard error, and an exit status
// that scripts can test (exit_status()).
#pragma once

#include <string>

#include "core/error.h"

namespace vhdkit::cli {

// The exit status of each return code (the README's table): what scripts test.
int exit_status(ReturnCode code);

// "vhdkit: PATH: problem", as every subcommand prints an error.
std::string message(const Error& error);

// Prints the error to standard error and returns the exit status for it.
int report(const Error& error);

// The exit status `check` uses when the image opened but has structural problems.
inline constexpr int kExitProblemsFound = 1;

}  // namespace vhdkit::cli
