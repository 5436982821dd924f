// Running the vhdkit binary from integration tests.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "test_support.h"

namespace vhdkit::testing {

// `vhdkit ARGS` (ARGS already shell-quoted where needed).
RunResult vhdkit(const std::string& args);
// Runs `vhdkit ARGS`, fails the test unless it exits 0, and parses its standard output as JSON.
nlohmann::json vhdkit_json(const std::string& args);
// Parses a command's standard output as JSON, failing the test (and returning null) when it is not JSON.
nlohmann::json parse_json(const std::string& text, const std::string& what);

// A file of `size` bytes of pseudo-random data (seeded: the same every run), fully allocated on the host.
void make_random_file(const std::string& path, uint64_t size, uint32_t seed = 1);

}  // namespace vhdkit::testing
