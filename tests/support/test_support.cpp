// SPDX-License-Identifier: Apache-2.0
#include "test_support.h"
#include "image/open_image.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>

namespace vhdkit::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/vhdkit-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  // Tests may leave read-only files or folders (permission tests); make them removable first.
  for (auto it = fs::recursive_directory_iterator(path_, ec); it != fs::recursive_directory_iterator(); ++it)
    fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(path_, ec);
}

std::string q(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

static std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RunResult run(const std::string& command) {
  TempDir tmp;
  std::string out = tmp.file("out"), err = tmp.file("err");
  std::string full = "(" + command + ") > " + q(out) + " 2> " + q(err) + " < /dev/null";
  int rc = std::system(full.c_str());
  RunResult r;
  if (rc == -1)
    r.status = -1;
  else if (WIFEXITED(rc))
    r.status = WEXITSTATUS(rc);
  else if (WIFSIGNALED(rc))
    r.status = 128 + WTERMSIG(rc);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

std::string run_ok(const std::string& command) {
  RunResult r = run(command);
  EXPECT_EQ(r.status, 0) << "command failed: " << command << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
  return r.out;
}

std::string vhdkit_bin() { return VHDKIT_BINARY; }
std::string fixtures_dir() {
  const char* env = std::getenv("VHDKIT_FIXTURES");
  return env && *env ? env : VHDKIT_FIXTURES_DIR;
}

std::string fixtures_missing() {
  std::error_code ec;
  // SOURCES.md describes every fixture: a folder without it is not the fixtures folder.
  if (fs::is_regular_file(fs::path(fixtures_dir()) / "SOURCES.md", ec)) return {};
  return "fixtures not found in " + fixtures_dir() + ": set VHDKIT_FIXTURES=<folder> to point elsewhere";
}

bool fixtures_required() {
  const char* env = std::getenv("VHDKIT_REQUIRE_FIXTURES");
  return env && std::string(env) == "1";
}

std::string expand_fixture(const std::string& name, const TempDir& dir) {
  fs::path src = fs::path(fixtures_dir()) / name;
  const std::string missing = dir.file("missing-fixture-" + src.filename().string());
  if (std::string why = fixtures_missing(); !why.empty()) {
    ADD_FAILURE() << why << " (and the test does not start with VHDKIT_NEEDS_FIXTURES())";
    return missing;
  }
  std::error_code ec;
  if (!fs::is_regular_file(src, ec)) {
    ADD_FAILURE() << "fixture " << name << " not found in " << fixtures_dir();
    return missing;
  }
  std::string stem = src.stem().string();  // drops .gz/.bz2/.zip
  std::string out = dir.file(stem);
  std::string ext = src.extension().string();
  // A fixture that does not decompress fails the test, and leaves no half-written image to open.
  auto expanded = [&](const std::string& command, const std::string& result) {
    RunResult r = run(command);
    if (r.status == 0) return result;
    ADD_FAILURE() << "fixture " << name << " in " << fixtures_dir() << " does not expand: " << command << "\n" << r.err;
    fs::remove(out, ec);
    return missing;
  };
  const std::string from = q(src.string());
  if (ext == ".gz")
    return expanded("gzip -t " + from + " && gzip -dc " + from + " | cp --sparse=always /dev/stdin " + q(out), out);
  if (ext == ".bz2")
    return expanded("bzip2 -t " + from + " && bzip2 -dc " + from + " | cp --sparse=always /dev/stdin " + q(out), out);
  if (ext != ".zip") return expanded("cp --sparse=always " + from + " " + q(out), out);
  // The zip's member may have another name: extract it into a folder of its own, return the single image inside.
  const fs::path into = dir.path() / ("unzipped-" + stem);
  if (expanded("mkdir -p " + q(into.string()) + " && unzip -o -q " + from + " -d " + q(into.string()), "").empty()) {
    for (auto& e : fs::directory_iterator(into, ec)) {
      auto x = e.path().extension().string();
      if (x == ".vhd" || x == ".vhdx") return e.path().string();
    }
    ADD_FAILURE() << "no image inside " << src;
  }
  return missing;
}

static uint64_t announce_seed(uint64_t seed) {
  std::cout << "seed " << seed << " (VHDKIT_TEST_SEED=" << seed << " repeats it)" << std::endl;
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return seed;
}

static std::optional<uint64_t> seed_from_env() {
  const char* env = std::getenv("VHDKIT_TEST_SEED");
  if (!env || !*env) return std::nullopt;
  char* end = nullptr;
  uint64_t seed = std::strtoull(env, &end, 0);
  if (*end != '\0') {
    ADD_FAILURE() << "VHDKIT_TEST_SEED=" << env << " is not a number";
    return std::nullopt;
  }
  return seed;
}

uint64_t test_seed(uint64_t fallback) { return announce_seed(seed_from_env().value_or(fallback)); }

uint64_t random_test_seed() {
  if (auto seed = seed_from_env()) return announce_seed(*seed);
  std::random_device device;
  return announce_seed((uint64_t{device()} << 32) | device());
}

std::unique_ptr<disk::VirtualDisk> open_ok(const std::string& path, disk::OpenOptions options) {
  auto d = image::open_image(io::Env::posix(), path, options);
  EXPECT_TRUE(d.has_value()) << (d ? "" : d.error().what());
  return d ? std::move(*d) : nullptr;
}

std::string qemu_raw(const std::string& image, const TempDir& dir, const std::string& name, const std::string& format) {
  std::string out = dir.file(name);
  std::string f = format.empty() ? "" : " -f " + format;
  run_ok("rm -f " + q(out) + " && qemu-img convert -U" + f + " -O raw " + q(image) + " " + q(out));
  return out;
}

std::string sha256(const std::string& path) {
  RunResult r = run("sha256sum " + q(path));
  EXPECT_EQ(r.status, 0) << r.err;
  return r.out.substr(0, 64);
}

std::vector<std::byte> read_file(const std::string& path) {
  std::string s = slurp(path);
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

void write_file(const std::string& path, const std::vector<std::byte>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

void patch_file(const std::string& path, uint64_t offset, const std::vector<uint8_t>& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

}  // namespace vhdkit::testing
