// SPDX-License-Identifier: Apache-2.0
// Helpers shared by all tests. Tests use real tools (qemu-img, vhdiinfo, mkfs.*) as referees; these
// helpers run them and fail the test (never skip) when a tool is missing: `make test` installs them.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "disk/virtual_disk.h"

namespace vhdkit::testing {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR (default /tmp), removed with everything in it when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

struct RunResult {
  int status = -1;  // exit status, or 128+signal
  std::string out;  // standard output
  std::string err;  // standard error
};

// Runs a shell command line; stdout and stderr captured separately.
RunResult run(const std::string& command);
// Runs and fails the current test (with the command's output) unless it exits 0; returns stdout.
std::string run_ok(const std::string& command);
// Shell-quotes one argument.
std::string q(const std::string& arg);

std::string vhdkit_bin();  // the built vhdkit binary

// The real images made by Windows, qemu and others are not in this repository: they live in
// ../shared/fixtures beside the source folder, or wherever $VHDKIT_FIXTURES names. A test that uses them
// starts with VHDKIT_NEEDS_FIXTURES(): without the folder it skips, saying which folder and which variable,
// unless VHDKIT_REQUIRE_FIXTURES=1 (CI sets it), which makes the skip a failure.
std::string fixtures_dir();
// Why the fixtures cannot be used ("fixtures not found in DIR: ..."), or empty when they can.
std::string fixtures_missing();
bool fixtures_required();  // VHDKIT_REQUIRE_FIXTURES=1
#define VHDKIT_NEEDS_FIXTURES()                                                                     \
  do {                                                                                              \
    if (std::string why_ = ::vhdkit::testing::fixtures_missing(); !why_.empty()) {                  \
      if (::vhdkit::testing::fixtures_required()) FAIL() << why_ << " (VHDKIT_REQUIRE_FIXTURES=1)"; \
      GTEST_SKIP() << why_;                                                                         \
    }                                                                                               \
  } while (0)
// Decompresses a fixture (name relative to fixtures_dir(), e.g. "qemu-iotests/d2v-zerofilled.vhd.bz2")
// into dir, sparse, and returns the path of the expanded image. A fixture that is not there (or a test that
// did not say VHDKIT_NEEDS_FIXTURES() first) fails the test; the path returned then names no file.
std::string expand_fixture(const std::string& name, const TempDir& dir);

// The seed of a randomised test: $VHDKIT_TEST_SEED when set, else `fallback` (a fixed seed), or for
// random_test_seed() a fresh one each run. Printed ("seed N (VHDKIT_TEST_SEED=N repeats it)") and recorded as
// the test's property "seed", so that a failure can be replayed.
uint64_t test_seed(uint64_t fallback);
uint64_t random_test_seed();

// Opens through image::open_image (the format detected unless the options force one); fails the test and
// returns null when the image does not open.
std::unique_ptr<disk::VirtualDisk> open_ok(const std::string& path, disk::OpenOptions options = {});
// `qemu-img convert -U [-f FORMAT] -O raw IMAGE DIR/NAME` (FORMAT probed when empty): the path of the raw file.
std::string qemu_raw(const std::string& image, const TempDir& dir, const std::string& name = "qemu.raw",
                     const std::string& format = "");

std::string sha256(const std::string& path);
std::vector<std::byte> read_file(const std::string& path);
void write_file(const std::string& path, const std::vector<std::byte>& data);
// Overwrites bytes in place (for making malformed variants).
void patch_file(const std::string& path, uint64_t offset, const std::vector<uint8_t>& bytes);

}  // namespace vhdkit::testing
