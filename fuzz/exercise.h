// SPDX-License-Identifier: Apache-2.0
// What every fuzz target does with an image it was given (libFuzzer; see fuzz/run.sh): everything a user
// can ask of it, read-only, and then compactions in memory: Prezeroed, whose result must read exactly what the
// image read before, then Full, whose result must read the same on every range the file systems use (and
// match its dry run). Any crash, sanitizer report or broken promise is a finding.
#pragma once

#include <string>

#include "io/testing/mem_env.h"

namespace vhdkit::fuzz {

// The image is the file `path` of `env` (a differencing disk's parent, if any, beside it).
void exercise(io::MemEnv& env, const std::string& path);

}  // namespace vhdkit::fuzz
