// SPDX-License-Identifier: Apache-2.0
// Volumes that must be kept whole, each made by the real tools and then put in the state under test: a
// dirty NTFS ($Volume's flag set in $MFT and $MFTMirr), a hibernated one (hiberfil.sys starting "hibr",
// or "wake"), one libntfs-3g refuses, FAT with its dirty bits or disagreeing FATs, and every named signature
// (btrfs, LUKS1/2, ZFS, ReFS, BitLocker, exFAT, MD RAID 0.90/1.0/1.1/1.2, bcache) behind GPT. The report
// names each and says why; after Full the partition reads exactly as before. libntfs-3g never tried to write.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "compact/compact.h"
#include "compact_checks.h"
#include "core/bytes.h"
#include "fs/ntfs_io.h"
#include "windows_disk.h"

namespace vhdkit::testing {
namespace {

using vhdkit::fs::Volume;

std::vector<uint8_t> bytes_at(const std::string& path, uint64_t offset, uint64_t length) {
  std::vector<std::byte> b = file_bytes(path, offset, length);
  std::vector<uint8_t> out(b.size());
  std::memcpy(out.data(), b.data(), b.size());
  return out;
}

// Sets $Volume's VOLUME_INFORMATION flags |= `flag` in MFT record 3 and in its $MFTMirr copy (libntfs-3g
// refuses a mount when the two differ). Record layout: first attribute at u16 @20; each attribute: type
// u32 @0, length u32 @4, resident value offset u16 @20; VOLUME_INFORMATION (0x70): flags u16 @10.
void set_volume_flag(const std::string& fs, uint16_t flag) {
  auto boot = bytes_at(fs, 0, 512);
  const uint64_t cluster = load_le<uint16_t>(reinterpret_cast<std::byte*>(&boot[11])) * uint64_t{boot[13]};
  const int8_t rs = static_cast<int8_t>(boot[64]);
  const uint64_t record = rs < 0 ? uint64_t{1} << -rs : rs * cluster;
  for (int at : {48, 56}) {  // $MFT and $MFTMirr LCNs
    const uint64_t rec = load_le<uint64_t>(reinterpret_cast<std::byte*>(&boot[at])) * cluster + 3 * record;
    auto r = bytes_at(fs, rec, record);
    ASSERT_EQ(std::memcmp(r.data(), "FILE", 4), 0);
    uint64_t a = load_le<uint16_t>(reinterpret_cast<std::byte*>(&r[20]));
    bool done = false;
    while (a + 24 <= r.size()) {
      const uint32_t type = load_le<uint32_t>(reinterpret_cast<std::byte*>(&r[a]));
      const uint32_t len = load_le<uint32_t>(reinterpret_cast<std::byte*>(&r[a + 4]));
      if (type == 0xFFFFFFFFu || len == 0) break;
      if (type == 0x70) {
        const uint64_t v = a + load_le<uint16_t>(reinterpret_cast<std::byte*>(&r[a + 20]));
        const uint16_t flags = static_cast<uint16_t>(r[v + 10] | (r[v + 11] << 8) | flag);
        patch_file(fs, rec + v + 10, {static_cast<uint8_t>(flags), static_cast<uint8_t>(flags >> 8)});
        done = true;
        break;
      }
      a += len;
    }
    ASSERT_TRUE(done) << "no VOLUME_INFORMATION in record 3";
  }
}

// A GPT disk with one partition at 1 MiB holding `fs`; `type` is sfdisk's type for it.
std::string behind_gpt(const TempDir& dir, const std::string& fs, const std::string& type) {
  const uint64_t sectors = std::filesystem::file_size(fs) / 512;
  std::string raw =
      make_partitioned(dir, std::filesystem::path(fs).stem().string() + ".raw", sectors / 2048 + 2,
                       "label: gpt\nstart=2048, size=" + std::to_string(sectors) + ", type=" + type + "\n");
  place(fs, raw, kMiB);
  return raw;
}

// Full on a VHDX of `raw`: the one volume is kept whole for a reason containing `why`, and afterwards the
// virtual disk reads exactly as the raw disk did.
void expect_kept_whole(const TempDir& dir, const std::string& raw, const std::string& filesystem,
                       const std::string& why) {
  vhdkit::fs::UsageMap map = map_raw(raw);
  ASSERT_EQ(map.volumes.size(), 1u);
  const Volume& v = map.volumes[0];
  EXPECT_EQ(v.filesystem, filesystem);
  EXPECT_EQ(v.state, Volume::State::KeptWhole);
  EXPECT_NE(v.reason.find(why), std::string::npos) << v.reason;
  EXPECT_EQ(v.used_bytes, v.size);
  std::string img = convert(raw, dir.file(std::filesystem::path(raw).stem().string() + ".vhdx"), "vhdx");
  compact::Options o;
  o.mode = compact::Mode::Full;
  compact::Report r = compact_ok(img, o);
  ASSERT_EQ(r.volumes.size(), 1u);
  EXPECT_EQ(r.volumes[0].state, "kept whole");
  EXPECT_NE(r.volumes[0].reason.find(why), std::string::npos) << r.volumes[0].reason;
  run_ok("qemu-img compare -f raw -F vhdx " + q(raw) + " " + q(img));
}

class Kept : public ::testing::Test {
 protected:
  void SetUp() override { files_ = make_guest_files(dir_, 21); }
  TempDir dir_;
  GuestFiles files_;
};

TEST_F(Kept, DirtyNtfs) {
  std::string fs = make_ntfs(dir_, "dirty", 4096, files_, 16);
  set_volume_flag(fs, 0x0001);
  // ntfsinfo sees the flag (and opens the volume only when forced to).
  EXPECT_NE(run("ntfsinfo -m " + q(fs) + " 2>&1").status, 0);
  RunResult info = run("ntfsinfo -f -m " + q(fs) + " 2>/dev/null");
  EXPECT_NE(info.out.find("Volume Flags: 0x0001"), std::string::npos) << info.out;
  expect_kept_whole(dir_, behind_gpt(dir_, fs, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"), "ntfs", "dirty");
}

TEST_F(Kept, HibernatedNtfs) {
  for (const char* sig : {"hibr", "HIBR", "wake"}) {
    SCOPED_TRACE(sig);
    std::string fs = make_ntfs(dir_, std::string("hib_") + sig, 4096, files_, 16);
    {
      std::string mnt = dir_.file(std::string("hib_") + sig + ".m");
      std::filesystem::create_directories(mnt);
      run_ok("ntfs-3g " + q(fs) + " " + q(mnt));
      std::string header = std::string(sig) + std::string(4092, 'x');
      std::ofstream(mnt + "/hiberfil.sys", std::ios::binary) << header;
      run_ok("umount " + q(mnt));
    }
    RunResult rw = run("mnt=$(mktemp -d) && ntfs-3g " + q(fs) +
                       " \"$mnt\" 2>&1; s=$?; umount \"$mnt\" 2>/dev/null; "
                       "rmdir \"$mnt\"; exit $s");
    // ntfs-3g itself refuses the read-write mount (and falls back to read-only).
    if (std::string(sig) != "wake") {
      EXPECT_NE(rw.out.find("Windows is hibernated, refused to mount"), std::string::npos) << rw.out;
    }
    expect_kept_whole(dir_, behind_gpt(dir_, fs, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"), "ntfs",
                      std::string(sig) == "wake" ? "resuming" : "hibernated");
  }
}

TEST_F(Kept, NtfsTheLibraryRefusesOrThatDoesNotFit) {
  std::string fs = make_ntfs(dir_, "refused", 4096, files_, 16);
  // $MFT's first record loses its magic in both copies: the library refuses the mount.
  auto boot = bytes_at(fs, 0, 512);
  for (int at : {48, 56})
    patch_file(fs, load_le<uint64_t>(reinterpret_cast<std::byte*>(&boot[at])) * 4096, {'X', 'X', 'X', 'X'});
  expect_kept_whole(dir_, behind_gpt(dir_, fs, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"), "ntfs", "refuses to mount");
  // A volume that claims more sectors than its partition has.
  std::string big = make_ntfs(dir_, "big", 4096, files_, 16);
  patch_file(big, 40, {0x00, 0x00, 0x01, 0x00});  // 65536 sectors: 32 MiB in a 16 MiB partition
  expect_kept_whole(dir_, behind_gpt(dir_, big, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"), "ntfs", "larger than");
  EXPECT_EQ(vhdkit::fs::detail::ntfs_write_attempts_total(), 0u) << "libntfs-3g tried to write";
}

// Where $LogFile's data starts: mkntfs and ntfs-3g's unmount leave it all 0xFF, so it is the first
// cluster-aligned 64 KiB of 0xFF bytes.
uint64_t logfile_start(const std::string& fs) {
  auto all = bytes_at(fs, 0, std::filesystem::file_size(fs));
  for (uint64_t c = 4096; c + 65536 <= all.size(); c += 4096) {
    if (std::all_of(all.begin() + static_cast<ptrdiff_t>(c), all.begin() + static_cast<ptrdiff_t>(c + 65536),
                    [](uint8_t b) { return b == 0xFF; }))
      return c;
  }
  return 0;
}

void put16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v);
  b[at + 1] = static_cast<uint8_t>(v >> 8);
}

// A $LogFile restart page as Windows leaves one (the layout of ntfs-3g's logfile.h): RESTART_PAGE_HEADER
// ("RSTR", update sequence array at 0x1e of 9 entries for a 4096-byte page, restart area at 0x30, version
// MAJOR.MINOR), RESTART_AREA (one log client; in use or free; flags; a 4 MiB log: 67 - 23 sequence bits;
// client array at 0x30 of the area) and one LOG_CLIENT_RECORD named "NTFS"; the update sequence applied.
std::vector<uint8_t> restart_page(uint16_t major, uint16_t minor, bool client_in_use, uint16_t flags) {
  std::vector<uint8_t> p(4096, 0);
  std::memcpy(p.data(), "RSTR", 4);
  put16(p, 4, 0x1e);  // usa_ofs
  put16(p, 6, 9);     // usa_count
  put16(p, 16, 0);
  p[17] = 0x10;  // system_page_size 4096
  p[21] = 0x10;  // log_page_size 4096
  put16(p, 24, 0x30);
  put16(p, 26, minor);
  put16(p, 28, major);
  const size_t ra = 0x30;
  put16(p, ra + 8, 1);                            // log_clients
  put16(p, ra + 10, client_in_use ? 0xFFFF : 0);  // client_free_list
  put16(p, ra + 12, client_in_use ? 0 : 0xFFFF);  // client_in_use_list
  put16(p, ra + 14, flags);                       // RESTART_VOLUME_IS_CLEAN = 0x0002
  p[ra + 16] = 44;                                // seq_number_bits
  put16(p, ra + 20, 0x30 + 0xa0);                 // restart_area_length
  put16(p, ra + 22, 0x30);                        // client_array_offset
  p[ra + 26] = 0x40;                              // file_size 4 MiB
  put16(p, ra + 36, 0x30);                        // log_record_header_length
  put16(p, ra + 38, 0x40);                        // log_page_data_offset
  const size_t cr = ra + 0x30;
  put16(p, cr + 16, 0xFFFF);  // prev_client
  put16(p, cr + 18, 0xFFFF);  // next_client
  p[cr + 28] = 8;             // client_name_length
  for (int i = 0; i < 4; ++i) p[cr + 32 + 2 * i] = static_cast<uint8_t>("NTFS"[i]);
  // The update sequence: usn 1 at the end of each 512-byte sector, the bytes it replaced in the array.
  put16(p, 0x1e, 1);
  for (size_t sector = 0; sector < 8; ++sector) {
    const size_t end = sector * 512 + 510;
    p[0x20 + 2 * sector] = p[end];
    p[0x21 + 2 * sector] = p[end + 1];
    put16(p, end, 1);
  }
  return p;
}

TEST_F(Kept, NtfsLogFileNotClean) {
  struct LogCase {
    const char* name;
    std::vector<uint8_t> page;
    const char* why;
  };
  const LogCase kCases[] = {
      // A log record page where the restart pages should be: ntfs_check_logfile fails.
      {"damaged", {'R', 'C', 'R', 'D'}, "$LogFile is damaged"},
      // A client still in use and no clean flag: the volume was not shut down cleanly.
      {"unclean", restart_page(1, 1, true, 0), "not shut down cleanly"},
      // Version 2.0: Windows 8+ kept metadata cached (Fast Startup), ntfs-3g refuses even to recover it.
      {"cached", restart_page(2, 0, false, 2), "Fast Startup"},
  };
  for (const LogCase& c : kCases) {
    SCOPED_TRACE(c.name);
    std::string fs = make_ntfs(dir_, std::string("log_") + c.name, 4096, files_, 16);
    const uint64_t at = logfile_start(fs);
    ASSERT_NE(at, 0u) << "no empty $LogFile found";
    patch_file(fs, at, c.page);
    // ntfs-3g sees it too (on a copy: by default it "recovers" by resetting the log, or falls back to a
    // read-only mount when Windows cached metadata).
    const std::string copy = fs + ".copy";
    std::filesystem::copy_file(fs, copy);
    RunResult rw = run("mnt=$(mktemp -d) && ntfs-3g " + q(copy) +
                       " \"$mnt\" 2>&1; s=$?; umount \"$mnt\" 2>/dev/null; "
                       "rmdir \"$mnt\"; exit $s");
    EXPECT_TRUE(rw.out.find("safely closed") != std::string::npos || rw.out.find("read-only") != std::string::npos)
        << rw.out;
    std::filesystem::remove(copy);
    expect_kept_whole(dir_, behind_gpt(dir_, fs, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"), "ntfs", c.why);
  }
}

// The library mounts a volume whose boot sector says fewer sectors than $Bitmap describes: the sizes disagree.
TEST_F(Kept, NtfsBitmapDisagreesWithTheVolume) {
  std::string fs = make_ntfs(dir_, "bitmap", 512, files_, 24);
  auto boot = bytes_at(fs, 0, 512);
  const uint64_t sectors = load_le<uint64_t>(reinterpret_cast<std::byte*>(&boot[40])) - 6144;
  std::vector<uint8_t> le(8);
  for (int i = 0; i < 8; ++i) le[i] = static_cast<uint8_t>(sectors >> (8 * i));
  patch_file(fs, 40, le);
  expect_kept_whole(dir_, behind_gpt(dir_, fs, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"), "ntfs", "$Bitmap");
}

// libntfs-3g's messages go into the reason, not to the user's terminal.
TEST_F(Kept, NtfsLibraryMessagesStayOffTheTerminal) {
  std::string fs = make_ntfs(dir_, "quiet", 4096, files_, 16);
  auto boot = bytes_at(fs, 0, 512);
  for (int at : {48, 56})
    patch_file(fs, load_le<uint64_t>(reinterpret_cast<std::byte*>(&boot[at])) * 4096, {'X', 'X', 'X', 'X'});
  std::string img =
      convert(behind_gpt(dir_, fs, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"), dir_.file("quiet.vhdx"), "vhdx");
  RunResult r = run(q(vhdkit_bin()) + " compact --dry-run --mode full " + q(img) + " 2>" + q(dir_.file("err")));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("refuses to mount"), std::string::npos) << r.out;
  std::ifstream err(dir_.file("err"));
  std::string e((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  EXPECT_EQ(e.find("MFT"), std::string::npos) << "libntfs-3g printed: " << e;
  EXPECT_EQ(e.find("ntfs"), std::string::npos) << "libntfs-3g printed: " << e;
}

TEST_F(Kept, FatDirtyOrInconsistent) {
  struct Damage {
    const char* name;
    int bits;
    const char* why;
    std::function<void(const std::string&, const ToolCount&)> apply;
  };
  // FAT[1] sits at the FAT's start + 2 (FAT16) or + 4 (FAT32); the FATs start after the reserved sectors.
  auto fat_start = [](const std::string& fs) {
    auto b = bytes_at(fs, 0, 512);
    return uint64_t(b[14] | (b[15] << 8)) * 512;
  };
  auto fat_bytes = [](const std::string& fs) {
    auto b = bytes_at(fs, 0, 512);
    uint64_t sz = b[22] | (b[23] << 8);
    if (!sz) sz = b[36] | (b[37] << 8) | (b[38] << 16) | (uint64_t(b[39]) << 24);
    return sz * 512;
  };
  const Damage kDamage[] = {
      {"fat16_boot_dirty", 16, "dirty", [](const std::string& fs, const ToolCount&) { patch_file(fs, 37, {0x01}); }},
      {"fat32_boot_dirty", 32, "dirty",
       [](const std::string& fs, const ToolCount&) {
         patch_file(fs, 65, {0x01});
         patch_file(fs, 6 * 512 + 65, {0x01});
       }},
      {"fat16_fat1_dirty", 16, "clean-shutdown",
       [&](const std::string& fs, const ToolCount&) {
         for (uint64_t c = 0; c < 2; ++c) patch_file(fs, fat_start(fs) + c * fat_bytes(fs) + 3, {0x7F});
       }},
      {"fat32_fat1_dirty", 32, "clean-shutdown",
       [&](const std::string& fs, const ToolCount&) {
         for (uint64_t c = 0; c < 2; ++c) patch_file(fs, fat_start(fs) + c * fat_bytes(fs) + 7, {0x07});
       }},
      {"fat16_copies_disagree", 16, "disagree",
       [&](const std::string& fs, const ToolCount&) { patch_file(fs, fat_start(fs) + fat_bytes(fs) + 100, {0x55}); }},
      {"fat32_backup_boot_differs", 32, "backup boot sector",
       [](const std::string& fs, const ToolCount&) { patch_file(fs, 6 * 512 + 13, {0x40}); }},
  };
  for (const Damage& d : kDamage) {
    SCOPED_TRACE(d.name);
    std::string fs = make_fat(dir_, d.name, d.bits, d.bits == 32 ? "-s 1" : "-s 4", files_, 40);
    d.apply(fs, ToolCount{});
    expect_kept_whole(dir_, behind_gpt(dir_, fs, "U"), "fat" + std::to_string(d.bits), d.why);
  }
}

// Signatures at their places in a partition of random bytes (random: Full's zero scan must have nothing to
// take, so "kept whole" is all that keeps the bytes).
TEST_F(Kept, NamedSignaturesBehindGpt) {
  struct Sig {
    const char* name;
    const char* filesystem;
    int64_t offset;  // from the start; negative: from the end
    std::vector<uint8_t> bytes;
    const char* why;
  };
  const uint64_t size = 8 * kMiB;
  const Sig kSigs[] = {
      {"luks1", "luks", 0, {'L', 'U', 'K', 'S', 0xba, 0xbe, 0, 1}, "LUKS1"},
      {"luks2", "luks", 0, {'L', 'U', 'K', 'S', 0xba, 0xbe, 0, 2}, "LUKS2"},
      {"bitlocker", "bitlocker", 3, {'-', 'F', 'V', 'E', '-', 'F', 'S', '-'}, "BitLocker"},
      {"refs", "refs", 3, {'R', 'e', 'F', 'S', 0, 0, 0, 0}, "ReFS"},
      {"exfat", "exfat", 3, {'E', 'X', 'F', 'A', 'T', ' ', ' ', ' '}, "exFAT"},
      {"btrfs", "btrfs", 65536 + 64, {'_', 'B', 'H', 'R', 'f', 'S', '_', 'M'}, "btrfs: not read yet"},
      {"zfs", "zfs_member", 128 * 1024 + 5 * 1024, {0x0c, 0xb1, 0xba, 0, 0, 0, 0, 0}, "ZFS"},
      {"md11", "linux_raid_member", 0, {0xfc, 0x4e, 0x2b, 0xa9, 1, 0, 0, 0}, "1.1 superblock"},
      {"md12", "linux_raid_member", 4096, {0xfc, 0x4e, 0x2b, 0xa9, 1, 0, 0, 0}, "1.2 superblock"},
      {"md10", "linux_raid_member", -8192, {0xfc, 0x4e, 0x2b, 0xa9, 1, 0, 0, 0}, "1.0 superblock"},
      {"md090", "linux_raid_member", -65536, {0xfc, 0x4e, 0x2b, 0xa9, 0, 0, 0, 0}, "0.90 superblock"},
      {"bcache",
       "bcache",
       4096 + 24,
       {0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81},
       "bcache"},
  };
  int seed = 100;
  for (const Sig& s : kSigs) {
    SCOPED_TRACE(s.name);
    std::string fs = dir_.file(std::string(s.name) + ".fs");
    run_ok("truncate -s " + std::to_string(size) + " " + q(fs));
    fill_random(fs, 0, size, static_cast<uint64_t>(seed++));
    // Clear what could make the random bytes look like another signature at the other places.
    for (uint64_t at : {uint64_t{0}, uint64_t{4096}, uint64_t{65536}, size - 8192, size - 65536})
      patch_file(fs, at, std::vector<uint8_t>(16, 0));
    patch_file(fs, s.offset >= 0 ? static_cast<uint64_t>(s.offset) : size - static_cast<uint64_t>(-s.offset), s.bytes);
    expect_kept_whole(dir_, behind_gpt(dir_, fs, "L"), s.filesystem, s.why);
  }
}

// The same names from the real tools, where Debian has them.
TEST_F(Kept, NamedSignaturesFromTheRealTools) {
  const uint64_t size = 128 * kMiB;
  if (run("command -v mkfs.btrfs >/dev/null").status == 0) {
    std::string fs = dir_.file("realbtrfs.fs");
    run_ok("truncate -s " + std::to_string(size) + " " + q(fs) + " && mkfs.btrfs -q -f " + q(fs) + " 2>&1");
    expect_kept_whole(dir_, behind_gpt(dir_, fs, "L"), "btrfs", "btrfs: not read yet, kept whole");
  } else {
    ADD_FAILURE() << "mkfs.btrfs is missing (btrfs-progs)";
  }
  if (run("command -v cryptsetup >/dev/null").status == 0) {
    for (const char* type : {"luks1", "luks2"}) {
      std::string fs = dir_.file(std::string("real") + type + ".fs");
      run_ok("truncate -s 20M " + q(fs) + " && printf secret | cryptsetup -q luksFormat --type " + type +
             " --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file - " + q(fs) + " 2>&1");
      expect_kept_whole(dir_, behind_gpt(dir_, fs, "L"), "luks", "encrypted, kept whole");
    }
  } else {
    ADD_FAILURE() << "cryptsetup is missing (cryptsetup-bin)";
  }
}

}  // namespace
}  // namespace vhdkit::testing
