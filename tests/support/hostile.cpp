// SPDX-License-Identifier: Apache-2.0
#include "hostile.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fstream>
#include <iostream>
#include <regex>

#include "core/bytes.h"

namespace vhdkit::testing {
namespace {

constexpr double kMaxSeconds = 10;
constexpr uint64_t kMaxRssKib = 256 * 1024;

// Our read of the image equals qemu's (vhdkit compare against qemu's raw conversion).
void expect_reads_like_qemu(const std::string& image, const std::string& qemu_format, const TempDir& dir,
                            const std::string& raw_name) {
  std::string raw = dir.file(raw_name);
  RunResult conv = run("qemu-img convert -f " + qemu_format + " -O raw " + q(image) + " " + q(raw));
  ASSERT_EQ(conv.status, 0) << "qemu cannot read " << image << ": " << conv.err;
  Measured cmp = measure_vhdkit("compare " + q(image) + " " + q(raw));
  expect_within_limits(cmp, "compare");
  EXPECT_EQ(cmp.status, 0) << "vhdkit and qemu read " << image << " differently: " << cmp.out << cmp.err;
}

// sha256 of the file's size and of every data extent (offset and bytes), skipping holes: the same file gives
// the same digest, any changed byte another one, and a 16 GiB sparse file takes no longer than its data.
std::string sparse_sha256(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0) << path;
  if (fd < 0) return {};
  struct stat st {};
  ::fstat(fd, &st);
  std::string tmp = path + ".digest-input";
  FILE* out = std::fopen(tmp.c_str(), "wb");
  std::fprintf(out, "size %lld\n", static_cast<long long>(st.st_size));
  std::vector<char> buf(1 << 20);
  off_t at = 0;
  while (at < st.st_size) {
    off_t data = ::lseek(fd, at, SEEK_DATA);
    if (data < 0) break;
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) hole = st.st_size;
    std::fprintf(out, "extent %lld\n", static_cast<long long>(data));
    for (off_t pos = data; pos < hole;) {
      ssize_t n = ::pread(fd, buf.data(),
                          static_cast<size_t>(std::min<off_t>(hole - pos, static_cast<off_t>(buf.size()))), pos);
      if (n <= 0) break;
      std::fwrite(buf.data(), 1, static_cast<size_t>(n), out);
      pos += n;
    }
    at = hole;
  }
  std::fclose(out);
  ::close(fd);
  std::string digest = sha256(tmp);
  std::filesystem::remove(tmp);
  return digest;
}

}  // namespace

void expect_within_limits(const Measured& m, const std::string& what) {
  EXPECT_LT(m.status, 128) << what << " died or timed out (status " << m.status << "): " << m.err;
  EXPECT_NE(m.status, 2) << what << " exited 2 (\"bad arguments\") for a bad image: " << m.err;
  EXPECT_LT(m.seconds, kMaxSeconds) << what;
  EXPECT_LT(m.rss_kib, kMaxRssKib) << what << " used " << m.rss_kib << " KiB";
}

Measured measure_vhdkit(const std::string& args) {
  // time measures vhdkit itself (not a wrapper); a run past 20 s is killed (status 137, no measurement).
  // VHDKIT_HOSTILE_BIN=another/vhdkit measures another build (for before/after figures).
  const char* other = std::getenv("VHDKIT_HOSTILE_BIN");
  std::string bin = other ? other : vhdkit_bin();
  std::string cmd =
      "timeout -s KILL 20 /usr/bin/time -f 'hostile-rss=%M hostile-secs=%e hostile-cpu=%U+%S' " + q(bin) + " " + args;
  RunResult r = run(cmd);
  Measured m;
  m.status = r.status;
  m.out = r.out;
  m.err = r.err;
  std::smatch sm;
  if (std::regex_search(r.err, sm, std::regex(R"(hostile-rss=(\d+) hostile-secs=([0-9.]+))"))) {
    m.rss_kib = std::stoull(sm[1]);
    m.seconds = std::stod(sm[2]);
    if (std::regex_search(r.err, sm, std::regex(R"(hostile-cpu=([0-9.]+)\+([0-9.]+))")))
      m.cpu_seconds = std::stod(sm[1]) + std::stod(sm[2]);
  } else if (r.status != 137) {
    ADD_FAILURE() << "no measurement from /usr/bin/time: " << r.err;
  } else {
    m.seconds = 20;
  }
  // "Command exited with non-zero status N" and "Command terminated by signal N" come from time itself.
  if (std::regex_search(r.err, sm, std::regex(R"(Command terminated by signal (\d+))")))
    m.status = 128 + std::stoi(sm[1]);
  return m;
}

void run_hostile_case(const HostileCase& c, const std::string& qemu_format) {
  SCOPED_TRACE(c.name);
  TempDir dir;
  std::string path = c.make(dir);
  if (::testing::Test::HasFailure()) return;
  std::string before = sparse_sha256(path);
  std::string qpath = q(path);

  // qemu's reading of the file before anything else touches it (where qemu can read it).
  if (c.outcome == Outcome::Compacts || c.outcome == Outcome::ReadOnly)
    expect_reads_like_qemu(c.qemu_reads_original ? dir.file("original") : path, qemu_format, dir, "before.raw");
  if (c.qemu_reads_original) {
    Measured cmp = measure_vhdkit("compare " + qpath + " " + q(dir.file("before.raw")));
    EXPECT_EQ(cmp.status, 0) << "vhdkit reads the damaged file otherwise than qemu the original: " << cmp.err;
  }

  double worst_secs = 0;
  uint64_t worst_rss = 0;
  auto note = [&](const Measured& m) {
    worst_secs = std::max(worst_secs, m.seconds);
    worst_rss = std::max(worst_rss, m.rss_kib);
  };

  Measured info = measure_vhdkit("info " + qpath);
  Measured check = measure_vhdkit("check " + qpath);
  Measured map = measure_vhdkit("map " + qpath);
  Measured dry = measure_vhdkit("compact --dry-run " + qpath);
  for (auto [m, what] : {std::pair{&info, "info"}, {&check, "check"}, {&map, "map"}, {&dry, "dry run"}}) {
    expect_within_limits(*m, std::string(what));
    note(*m);
  }
  EXPECT_EQ(sparse_sha256(path), before) << "a read-only command or the dry run changed the file";

  switch (c.outcome) {
    case Outcome::Refused: {
      EXPECT_NE(info.status, 0) << "info accepted it: " << info.out;
      EXPECT_NE(info.err.find(c.phrase), std::string::npos) << "expected \"" << c.phrase << "\" in: " << info.err;
      EXPECT_NE(check.status, 0);
      EXPECT_NE(map.status, 0);
      EXPECT_NE(dry.status, 0);
      Measured compact = measure_vhdkit("compact " + qpath);
      expect_within_limits(compact, "compact");
      note(compact);
      EXPECT_NE(compact.status, 0) << "compaction accepted it: " << compact.out;
      EXPECT_EQ(sparse_sha256(path), before) << "the refused file changed";
      break;
    }
    case Outcome::ReadOnlyNoQemu: {
      RunResult qemu = run("qemu-img info -f " + qemu_format + " " + qpath);
      EXPECT_NE(qemu.status, 0) << "qemu opens it after all: expect ReadOnly";
      [[fallthrough]];
    }
    case Outcome::ReadOnly: {
      EXPECT_EQ(info.status, 0) << info.err;
      EXPECT_EQ(map.status, 0) << map.err;
      EXPECT_NE(dry.status, 0) << "the dry run accepted it";
      Measured compact = measure_vhdkit("compact " + qpath);
      expect_within_limits(compact, "compact");
      note(compact);
      EXPECT_NE(compact.status, 0) << "compaction accepted it: " << compact.out;
      EXPECT_NE((compact.out + compact.err).find(c.phrase), std::string::npos)
          << "expected \"" << c.phrase << "\" in: " << compact.out << compact.err;
      EXPECT_EQ(sparse_sha256(path), before) << "the refused file changed";
      break;
    }
    case Outcome::Compacts:
    case Outcome::ReadsNoQemu: {
      EXPECT_EQ(info.status, 0) << info.err;
      EXPECT_EQ(map.status, 0) << map.err;
      EXPECT_EQ(dry.status, 0) << dry.err;
      if (c.outcome == Outcome::ReadsNoQemu) {
        // qemu reads a file with a dirty log only after replaying it (a read-write open): on a copy.
        std::string copy = dir.file("copy");
        run_ok("cp --sparse=always " + qpath + " " + q(copy));
        run_ok("qemu-img check -q -r all -f " + qemu_format + " " + q(copy));
        expect_reads_like_qemu(copy, qemu_format, dir, "before.raw");  // and vhdkit reads the original the same:
        Measured cmp = measure_vhdkit("compare " + qpath + " " + q(dir.file("before.raw")));
        EXPECT_EQ(cmp.status, 0) << "vhdkit's replay in memory reads otherwise than qemu's: " << cmp.out << cmp.err;
      }
      Measured compact = measure_vhdkit("compact " + qpath);
      expect_within_limits(compact, "compact");
      note(compact);
      EXPECT_EQ(compact.status, 0) << compact.err;
      Measured after = measure_vhdkit("check " + qpath);
      EXPECT_EQ(after.status, 0) << "not clean after compaction: " << after.out << after.err;
      RunResult qcheck = run("qemu-img check -f " + qemu_format + " " + qpath);
      EXPECT_EQ(qcheck.status, 0) << qcheck.out << qcheck.err;
      // Same content as before, as vhdkit reads it and as qemu reads it.
      Measured cmp = measure_vhdkit("compare " + qpath + " " + q(dir.file("before.raw")));
      EXPECT_EQ(cmp.status, 0) << "the content changed: " << cmp.out << cmp.err;
      RunResult qcmp = run("qemu-img compare -f " + qemu_format + " -F raw " + qpath + " " + q(dir.file("before.raw")));
      EXPECT_EQ(qcmp.status, 0) << qcmp.out << qcmp.err;
      break;
    }
  }
  std::cout << fmt::format("[ hostile {:<40} worst {:5.2f} s {:7} KiB ]\n", c.name, worst_secs, worst_rss);
}

void write_range(const std::string& path, uint64_t offset, const std::vector<std::byte>& b) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  ASSERT_TRUE(f.good()) << path;
}

std::vector<std::byte> read_range(const std::string& path, uint64_t offset, size_t n) {
  std::ifstream f(path, std::ios::binary);
  std::vector<std::byte> b(n);
  f.seekg(static_cast<std::streamoff>(offset));
  f.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(n));
  EXPECT_TRUE(f.good()) << path << " at " << offset;
  return b;
}

void put_le64(const std::string& path, uint64_t offset, uint64_t v) {
  std::vector<std::byte> b(8);
  store_le<uint64_t>(b.data(), v);
  write_range(path, offset, b);
}
void put_le32(const std::string& path, uint64_t offset, uint32_t v) {
  std::vector<std::byte> b(4);
  store_le<uint32_t>(b.data(), v);
  write_range(path, offset, b);
}
void put_le16(const std::string& path, uint64_t offset, uint16_t v) {
  std::vector<std::byte> b(2);
  store_le<uint16_t>(b.data(), v);
  write_range(path, offset, b);
}

}  // namespace vhdkit::testing
