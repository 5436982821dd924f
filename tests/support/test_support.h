// Helpers shared by all tests. Tests use real tools (qemu-img, vhdiinfo, mkfs.*) as referees; these
// helpers run them and fail the test (never skip) when a tool is missing: `make test` installs them.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

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
  int status = -1;     // exit status, or 128+signal
  std::string out;     // standard output
  std::string err;     // standard error
};

// Runs a shell command line; stdout and stderr captured separately.
RunResult run(const std::string& command);
// Runs and fails the current test (with the command's output) unless it exits 0; returns stdout.
std::string run_ok(const std::string& command);
// Shell-quotes one argument.
std::string q(const std::string& arg);

std::string vhdkit_bin();       // the built vhdkit binary
std::string fixtures_dir();     // ../shared/fixtures
// Decompresses a fixture (name relative to fixtures_dir(), e.g. "qemu-iotests/d2v-zerofilled.vhd.bz2")
// into dir, sparse, and returns the path of the expanded image.
std::string expand_fixture(const std::string& name, const TempDir& dir);

std::string sha256(const std::string& path);
std::vector<std::byte> read_file(const std::string& path);
void write_file(const std::string& path, const std::vector<std::byte>& data);
// Overwrites bytes in place (for making malformed variants).
void patch_file(const std::string& path, uint64_t offset, const std::vector<uint8_t>& bytes);

}  // namespace vhdkit::testing
