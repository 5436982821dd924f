// SPDX-License-Identifier: Apache-2.0
// Test images for compaction, made at run time by the real tools, and the referees' verdicts on them.
#pragma once

#include <cstdint>
#include <string>

#include "disk/virtual_disk.h"
#include "io/file.h"
#include "test_support.h"
#include "vhdx/format.h"

namespace vhdkit::testing {

constexpr uint64_t kMiB = 1 << 20;

// A raw image of blocks of `block` bytes, one per character: 'D' random data (the first 2 MiB of a larger
// block), 'Z' zeros, 'P' zeros except one sector of data in the middle (zero in only some sectors: must
// stay), 'H' random data in the first half and zeros in the second.
void make_raw_pattern(const std::string& raw, const std::string& pattern, uint64_t block = 2 * kMiB);

// A dynamic image (made by qemu-img convert -S 0) holding the pattern, every block allocated, in order.
std::string make_dynamic(const TempDir& dir, const std::string& name, const std::string& pattern, disk::Format format,
                         uint64_t block);
inline std::string make_dynamic_vhd(const TempDir& dir, const std::string& name, const std::string& pattern) {
  return make_dynamic(dir, name, pattern, disk::Format::Vhd, 2 * kMiB);
}
inline std::string make_dynamic_vhdx(const TempDir& dir, const std::string& name, const std::string& pattern,
                                     uint64_t block = kMiB) {
  return make_dynamic(dir, name, pattern, disk::Format::Vhdx, block);
}

// Allocates each 2 MiB block of an empty dynamic image in the given order (qemu-io writes), so that file
// order differs from block order. order[i] is the i-th block to write; pattern says what it holds.
std::string make_shuffled(const TempDir& dir, const std::string& name, const std::string& pattern,
                          const std::vector<int>& order, disk::Format format = disk::Format::Vhd);
inline std::string make_shuffled_vhd(const TempDir& dir, const std::string& name, const std::string& pattern,
                                     const std::vector<int>& order) {
  return make_shuffled(dir, name, pattern, order, disk::Format::Vhd);
}

// qemu's name for the image's format ("vpc" or "vhdx"), from the file's signature.
std::string qemu_format(const std::string& image);

// A sparse copy that stays put while the original is compacted.
std::string keep_copy(const std::string& path);

uint64_t file_size(const std::string& path);

// The referees: qemu-img compare equal, qemu-img info and vhdiinfo read it, qemu-img check does not
// complain (vpc has no check in qemu: the only accepted failure is that exact statement).
//   QemuReads::Yes: qemu reads the image and what it holds (compare, check, info).
//   QemuReads::FileOnly: a VHD child: qemu's vpc driver ignores parents, so it checks the file but cannot
//     compare what the child reads.
//   QemuReads::No: an image qemu 7.2 does not open (differencing VHDX, VHDX with 4 KiB logical sectors):
//     vhdiinfo is the only referee.
enum class QemuReads { Yes, FileOnly, No };
void expect_same_content(const std::string& a, const std::string& b);
void expect_tools_accept(const std::string& image, QemuReads qemu = QemuReads::Yes);

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

// Opens read-write and closes: a VHDX log left by a power cut is replayed to the file (as any writer would
// on its next open). Fails the test when the image does not open.
void recover(io::Env& env, const std::string& path);

// A differencing VHDX (made by our writer, 1 MiB blocks) over a dynamic VHDX parent (made by qemu-img) with
// data in blocks 0-2, 4-7, 9, 11 and the first half of block 10. The child's blocks, one per case:
//   0 FULLY_PRESENT, the parent's data again -> NOT_PRESENT    1 FULLY_PRESENT zeros over data -> ZERO
//   2 FULLY_PRESENT, its own data (keep)                       3 FULLY_PRESENT zeros over zeros -> NOT_PRESENT
//   4 FULLY_PRESENT, the parent's data but one byte (keep)
//   5 PARTIALLY_PRESENT, present sectors equal to the parent -> NOT_PRESENT
//   6 PARTIALLY_PRESENT, present sectors zero over the parent's data (keep)
//   7 PARTIALLY_PRESENT, present sectors its own data (keep)
//   8 PARTIALLY_PRESENT over the parent's zero block, present sectors zero -> NOT_PRESENT
//   9 ZERO, its entry still naming file space -> ZERO without space
//   10 PARTIALLY_PRESENT, the half where the parent has data present and zero -> ZERO
//   11-15 NOT_PRESENT
// Sectors that are not present hold garbage; the sector bitmap block lies last in the file (it must move),
// and blocks 1 and 7 have bits set beyond what they use. The file is 16 MiB; compacted, 9 MiB.
struct VhdxDifferencingPair {
  std::string parent;
  std::string child;
  uint64_t releasable = 7;
};
VhdxDifferencingPair make_vhdx_differencing_pair(const TempDir& dir);

// Gives the zero-filled FULLY_PRESENT blocks of a dynamic VHDX the state ZERO while their entries keep
// naming their file space, as Hyper-V leaves blocks the guest trimmed.
void mark_zero_keeping_space(const std::string& vhdx, const std::vector<uint64_t>& blocks);
// The same with another state without data (UNMAPPED 3, the older UNMAPPED 5, UNDEFINED 1).
void mark_without_data_keeping_space(const std::string& vhdx, const std::vector<uint64_t>& blocks,
                                     vhdx::PayloadState state);

// Our own reader and check (src/vhd, src/vhdx through open_image): the whole virtual content, and the problems
// check() finds (empty when clean). Both fail the test when the image does not open.
std::vector<std::byte> virtual_content(io::Env& env, const std::string& path);
std::vector<std::string> our_check(io::Env& env, const std::string& path);

}  // namespace vhdkit::testing
