// SPDX-License-Identifier: Apache-2.0
// Windows-side guest disks for the NTFS and FAT tests, made at run time by the real tools: mkntfs and an
// ntfs-3g mount (files copied in, some deleted: their bytes stay), mkfs.vfat with mcopy/mdel; and the
// referees on a compacted disk: ntfsfix -n and fsck.fat -n clean, every kept file read back (ntfs-3g -o ro,
// mcopy) with its checksum, every range our map called used unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "guest_disk.h"

namespace vhdkit::testing {

// An NTFS image of `mib` MiB (mkntfs -f -c CLUSTER), the guest files copied in through an ntfs-3g mount and
// the deleted ones removed again.
std::string make_ntfs(const TempDir& dir, const std::string& name, uint64_t cluster, const GuestFiles& files,
                      uint64_t mib);
// A FAT image of `mib` MiB (mkfs.vfat -F BITS OPTIONS), the guest files copied in by mcopy, the deleted ones
// removed by mdel.
std::string make_fat(const TempDir& dir, const std::string& name, int bits, const std::string& options,
                     const GuestFiles& files, uint64_t mib);

enum class WinFs { Ntfs, Fat };
struct WinVolume {
  WinFs fs = WinFs::Ntfs;
  uint64_t offset = 0;
  uint64_t size = 0;
  const GuestFiles* files = nullptr;
};

// Copies [offset, offset + size) of a raw disk into its own file.
std::string extract(const TempDir& dir, const std::string& raw, uint64_t offset, uint64_t size,
                    const std::string& name);

// ntfsfix -n / fsck.fat -n clean, and every kept file there with its checksum.
void expect_volume_intact(const TempDir& dir, const std::string& part, const WinVolume& v);

// The referees on a compacted image: qemu-img check, the virtual disk equal to `before_raw` on every used
// range, and every volume intact.
void expect_windows_intact(const TempDir& dir, const std::string& image, const std::string& before_raw,
                           const std::vector<vhdkit::fs::ByteRange>& used, const std::vector<WinVolume>& volumes);

// What the real tools count as in use, in bytes of the volume's clusters: ntfsinfo's cluster count minus its
// free clusters, fsck.fat -v's used clusters (times the cluster size).
struct ToolCount {
  uint64_t cluster = 0, clusters = 0, used_clusters = 0;
  uint64_t data_start = 0;  // FAT: the byte the data area starts at
};
ToolCount ntfs_tool_count(const std::string& part);
ToolCount fat_tool_count(const std::string& part);

}  // namespace vhdkit::testing
