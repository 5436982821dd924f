// SPDX-License-Identifier: Apache-2.0
// Guest disks for the Full and Quick tests, made at run time by the real tools: ext2/3/4 file systems filled
// by mke2fs -d, files deleted by debugfs (their bytes stay), placed bare or behind MBR (primary, logical) or GPT
// by sfdisk, converted to VHD and VHDX by qemu-img; and the referees that judge a compacted image: e2fsck -fn
// on every file system, every surviving file's sha256 (debugfs rdump), qemu-img check, and our reader on
// every range the file systems used before.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fs/usage_map.h"
#include "images.h"
#include "test_support.h"

namespace vhdkit::testing {

// A folder of files with seeded pseudo-random content; `deleted` are removed after mke2fs -d.
struct GuestFiles {
  std::string folder;
  std::map<std::string, std::string> kept;  // path in the file system -> sha256
  std::vector<std::string> deleted;
};
GuestFiles make_guest_files(const TempDir& dir, uint64_t seed);

// A file system image of `mib` MiB: mke2fs -q -F OPTIONS -d files, then debugfs -w rm of the deleted files.
std::string make_ext(const TempDir& dir, const std::string& name, const std::string& mkfs_options,
                     const GuestFiles& files, uint64_t mib);

// A disk of `mib` MiB partitioned by an sfdisk script (none: the caller places a bare file system).
std::string make_partitioned(const TempDir& dir, const std::string& name, uint64_t mib, const std::string& script);
// Copies `image` into `disk` at byte `offset` (in place, sparse).
void place(const std::string& image, const std::string& disk, uint64_t offset);
// Fills [offset, offset + length) of `disk` with seeded random bytes.
void fill_random(const std::string& disk, uint64_t offset, uint64_t length, uint64_t seed);

// qemu-img convert from raw: "vhd" (vpc, dynamic, 2 MiB blocks) or "vhdx" (1 MiB blocks).
std::string convert(const std::string& raw, const std::string& out, const std::string& format);

// What our fs layer calls used on a raw disk (the ranges Full and Quick must keep).
vhdkit::fs::UsageMap map_raw(const std::string& raw);

// A file system inside a disk: where it lies and which files it must still hold.
struct GuestFs {
  uint64_t offset = 0;
  uint64_t size = 0;
  const GuestFiles* files = nullptr;
};

// qemu-img check on a VHD (vpc, which has no check: only that refusal is accepted) or VHDX (clean).
void expect_qemu_check_passes(const std::string& image);

// The referees on a compacted image: qemu-img check and info, vhdiinfo; every file system e2fsck -fn clean
// and holding its files; the virtual disk (read by qemu-img convert) equal to `before_raw` on every used range.
void expect_guest_intact(const TempDir& dir, const std::string& image, const std::string& before_raw,
                         const std::vector<vhdkit::fs::ByteRange>& used, const std::vector<GuestFs>& filesystems);

// The same on a raw copy of what the compacted disk reads (for images qemu cannot read: differencing VHDs).
void expect_raw_intact(const TempDir& dir, const std::string& after_raw, const std::string& before_raw,
                       const std::vector<vhdkit::fs::ByteRange>& used, const std::vector<GuestFs>& filesystems);

// Reads [offset, offset + length) of a host file.
std::vector<std::byte> file_bytes(const std::string& path, uint64_t offset, uint64_t length);

}  // namespace vhdkit::testing
