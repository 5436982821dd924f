// SPDX-License-Identifier: Apache-2.0
// Running the vhdkit binary from integration tests.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "test_support.h"

namespace vhdkit::testing {

// `vhdkit ARGS` (ARGS already shell-quoted where needed).
RunResult vhdkit(const std::string& args);
// Runs `vhdkit ARGS`, fails the test unless it exits 0, and parses its standard output as JSON.
nlohmann::json vhdkit_json(const std::string& args);
// Parses a command's standard output as JSON, failing the test (and returning null) when it is not JSON.
nlohmann::json parse_json(const std::string& text, const std::string& what);

// What vhdiinfo (libvhdi) says of an image: "Media size : 10 MiB (10514432 bytes)", "Disk type : Dynamic".
struct VhdiInfo {
  uint64_t media_size = 0;
  std::string disk_type;
};
VhdiInfo vhdiinfo(const std::string& path);

// Runs `vhdkit compare A B` and `qemu-img compare -f FA -F FB A B` (FA, FB: qemu's format names) and
// expects both to exit with expected_status and print the same text.
void expect_compare_agrees(const std::string& a, const std::string& fa, const std::string& b, const std::string& fb,
                           int expected_status);

// Through vhdkit create/write in `format`: a 16 MiB parent holding 0x22 over its first 4 MiB and a
// differencing child that wrote 0x33 over 1-2 MiB; and, through qemu-io, the raw image of the child's content.
void make_cli_differencing_pair(const std::string& format, const std::string& parent, const std::string& child,
                                const std::string& expected_raw);

// A file of `size` bytes of pseudo-random data (seeded: the same every run), fully allocated on the host.
void make_random_file(const std::string& path, uint64_t size, uint32_t seed = 1);

}  // namespace vhdkit::testing
