// SPDX-License-Identifier: Apache-2.0
// Hostile images, judged the way the issue asks: every subcommand a user would run on them (info, check, map,
// the dry run, the compaction) ends within 10 s, under 256 MiB of RSS, with an exit status below 128 and never 2
// ("bad arguments"); a refused file is byte-for-byte unchanged; a file vhdkit accepts reads what qemu reads, and
// reads the same after compaction as before.
//
// The images are made at run time (qemu-img or our writer, then damaged with valid checksums, so that the damage
// reaches deep code); each test file holds a table of them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "test_support.h"

namespace vhdkit::testing {

enum class Outcome {
  Refused,         // every command fails (not with 2), the file is unchanged
  ReadOnly,        // info and map succeed and read what qemu reads; the dry run and compaction refuse, unchanged
  ReadOnlyNoQemu,  // like ReadOnly, for a file qemu refuses to open (vhdkit reads more than qemu here)
  Compacts,        // everything succeeds; the content after compaction equals the content before (vhdkit and qemu)
  ReadsNoQemu,     // like Compacts, but qemu reads the file only after replaying its log (on a copy)
};

struct HostileCase {
  std::string name;
  std::function<std::string(const TempDir&)> make;  // returns the image path
  Outcome outcome;
  std::string phrase;  // part of the refusal (Refused: of info's error; ReadOnly: of the compaction's error)
  // The damage leaves the content as it was, but qemu is too slow to referee the damaged file (its log scan is
  // quadratic): make() keeps an undamaged copy at dir.file("original"), which qemu reads instead.
  bool qemu_reads_original = false;
};

// What one command did.
struct Measured {
  int status = -1;
  double seconds = 0;      // elapsed
  double cpu_seconds = 0;  // user + system
  uint64_t rss_kib = 0;
  std::string out, err;
};

// Runs `vhdkit ARGS` under timeout 10 and /usr/bin/time; the limits are checked by the caller.
Measured measure_vhdkit(const std::string& args);

// The limits every command keeps: under 10 s and 256 MiB of RSS, an exit status below 128 and not 2.
void expect_within_limits(const Measured& m, const std::string& what);

// Runs every command on the case's image and checks the outcome. qemu_format: "vpc" or "vhdx".
void run_hostile_case(const HostileCase& c, const std::string& qemu_format);

// Little-endian and big-endian byte helpers for damaging files in place.
void put_le64(const std::string& path, uint64_t offset, uint64_t v);
void put_le32(const std::string& path, uint64_t offset, uint32_t v);
void put_le16(const std::string& path, uint64_t offset, uint16_t v);
std::vector<std::byte> read_range(const std::string& path, uint64_t offset, size_t n);
void write_range(const std::string& path, uint64_t offset, const std::vector<std::byte>& b);

}  // namespace vhdkit::testing
