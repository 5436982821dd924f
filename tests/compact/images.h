// Test images for compaction, made at run time by the real tools, and the referees' verdicts on them.
#pragma once

#include <cstdint>
#include <string>

#include "io/file.h"
#include "test_support.h"

namespace vhdkit::testing {

constexpr uint64_t kMiB = 1 << 20;

// A raw image of 2 MiB blocks, one per character: 'D' random data, 'Z' zeros, 'P' zeros except one sector
// of data in the middle (zero in only some sectors: must stay).
void make_raw_pattern(const std::string& raw, const std::string& pattern);

// A dynamic VHD holding the pattern with every block allocated (qemu-img convert -S 0), blocks in order.
std::string make_dynamic_vhd(const TempDir& dir, const std::string& name, const std::string& pattern);

// Allocates each block of an empty dynamic VHD in the given order (qemu-io writes), so that file order
// differs from block order. order[i] is the i-th block to write; pattern says what it holds.
std::string make_shuffled_vhd(const TempDir& dir, const std::string& name, const std::string& pattern,
                              const std::vector<int>& order);

// A sparse copy that stays put while the original is compacted.
std::string keep_copy(const std::string& path);

uint64_t file_size(const std::string& path);

// The referees: qemu-img compare equal, qemu-img info and vhdiinfo read it, qemu-img check does not
// complain (vpc has no check in qemu: the only accepted failure is that exact statement).
void expect_same_content(const std::string& a, const std::string& b);
void expect_tools_accept(const std::string& image);

// A differencing VHD (made by our writer) over a dynamic parent (made by qemu-img) with data in every block
// but one. The child's blocks, one per case:
//   0 the parent's data again (release)      1 zeros where the parent has data (keep)
//   2 its own data (keep)                    3 its first 64 KiB equal to the parent, nothing else (release)
//   4 zeros over the parent's zero block (release)   5 the parent's data but one sector (keep)
//   6 not allocated                          7 allocated with no sector present (release)
struct DifferencingPair {
  std::string parent;
  std::string child;
  uint64_t releasable = 4;
};
DifferencingPair make_differencing_pair(const TempDir& dir);

// Our own reader and check (src/vhd through open_image): the whole virtual content, and the problems
// check() finds (empty when clean). Both fail the test when the image does not open.
std::vector<std::byte> virtual_content(io::Env& env, const std::string& path);
std::vector<std::string> our_check(io::Env& env, const std::string& path);

}  // namespace vhdkit::testing
