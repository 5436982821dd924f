// SPDX-License-Identifier: Apache-2.0
// The file-system layer against the real tools: images made at run time by mke2fs -d, mkswap, sfdisk and
// sgdisk, files deleted by debugfs (their bytes stay on disk), and dumpe2fs as the referee: for every
// variant, the blocks dumpe2fs lists as free are exactly the ones our map calls unused.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "disk/virtual_disk.h"
#include "fs/usage_map.h"
#include "io/file.h"
#include "open_disk.h"
#include "test_support.h"

namespace {

namespace vfs = vhdkit::fs;
using vhdkit::fs_test::volume_at;
using vhdkit::testing::q;
using vhdkit::testing::run;
using vhdkit::testing::run_ok;
using vhdkit::testing::TempDir;
using Ranges = std::vector<vfs::ByteRange>;

constexpr uint64_t MiB = 1 << 20;

Ranges merged(Ranges r) {
  std::sort(r.begin(), r.end(), [](auto& a, auto& b) { return a.offset < b.offset; });
  Ranges out;
  for (auto x : r) {
    if (!x.length) continue;
    if (!out.empty() && x.offset <= out.back().end()) {
      out.back().length = std::max(out.back().end(), x.end()) - out.back().offset;
    } else {
      out.push_back(x);
    }
  }
  return out;
}

// The part of `r` inside [lo, lo + len), shifted so that lo is 0.
Ranges window(const Ranges& r, uint64_t lo, uint64_t len) {
  Ranges out;
  for (auto x : r) {
    uint64_t a = std::max(x.offset, lo), b = std::min(x.end(), lo + len);
    if (a < b) out.push_back({a - lo, b - a});
  }
  return out;
}

std::string show(const Ranges& r) {
  std::ostringstream s;
  for (auto x : r) s << "[" << x.offset << "+" << x.length << ") ";
  return s.str();
}

vhdkit::Result<vfs::UsageMap> map_image(const std::string& path) {
  VHDKIT_ASSIGN(auto d, vhdkit::fs_test::open_disk(path));
  return vfs::map_usage(*d);
}

vfs::UsageMap map_ok(const std::string& path) {
  auto m = map_image(path);
  EXPECT_TRUE(m) << (m ? "" : m.error().what());
  return m ? *m : vfs::UsageMap{};
}

bool have(const std::string& tool) { return run("command -v " + tool + " >/dev/null 2>&1").status == 0; }

#define REQUIRE_TOOLS(...)                                                                        \
  for (const char* t : {__VA_ARGS__}) {                                                           \
    if (!have(t)) GTEST_SKIP() << t << " is not installed (scripts/install-deps.sh installs it)"; \
  }

// What dumpe2fs says of a file system image: its size and the byte ranges it uses (every block not listed
// as free, relative to the file system's start).
struct Referee {
  uint64_t block_size = 0, blocks = 0;
  Ranges used;
  uint64_t bytes() const { return block_size * blocks; }
};

uint64_t field(const std::string& text, const std::string& name) {
  auto p = text.find("\n" + name + ":");
  if (p == std::string::npos) return 0;
  return std::stoull(text.substr(p + name.size() + 2));
}

Referee dumpe2fs(const std::string& image) {
  std::string text = "\n" + run_ok("dumpe2fs " + q(image) + " 2>/dev/null");
  Referee r;
  r.block_size = field(text, "Block size");
  r.blocks = field(text, "Block count");
  uint64_t cluster = field(text, "Cluster size");
  // With bigalloc dumpe2fs prints each free run as the first blocks of its first and last clusters.
  uint64_t ratio = cluster ? cluster / r.block_size : 1;
  Ranges free;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    // Per-group lines are indented ("  Free blocks: 1680-2656, 2752"); the superblock's total is not.
    if (line.rfind("  Free blocks: ", 0) != 0) continue;
    std::istringstream items(line.substr(15));
    for (std::string item; std::getline(items, item, ',');) {
      if (item.find_first_not_of(" ") == std::string::npos) continue;
      uint64_t a = std::stoull(item), b = a;
      if (auto dash = item.find('-'); dash != std::string::npos) b = std::stoull(item.substr(dash + 1));
      b = std::min(b + ratio - 1, r.blocks - 1);
      free.push_back({a * r.block_size, (b - a + 1) * r.block_size});
    }
  }
  free = merged(free);
  uint64_t pos = 0;
  for (auto f : free) {
    if (f.offset > pos) r.used.push_back({pos, f.offset - pos});
    pos = f.end();
  }
  if (pos < r.bytes()) r.used.push_back({pos, r.bytes() - pos});
  EXPECT_GT(r.blocks, 0u) << image;
  EXPECT_FALSE(free.empty()) << "dumpe2fs lists no free blocks in " << image;
  return r;
}

struct Variant {
  const char* name;
  const char* mkfs;     // mke2fs options
  const char* flavour;  // what map_usage must call it
};
const Variant kVariants[] = {
    {"ext4", "-t ext4 -b 4096", "ext4"},
    {"ext4_no64bit", "-t ext4 -O ^64bit", "ext4"},
    {"ext4_no_flex_bg", "-t ext4 -b 4096 -g 2048 -O ^flex_bg", "ext4"},  // -g: 3 groups, not 1
    {"ext4_meta_bg", "-t ext4 -b 4096 -g 2048 -O meta_bg,^resize_inode", "ext4"},
    {"ext4_bigalloc", "-t ext4 -b 4096 -O bigalloc -C 16384", "ext4"},
    {"ext4_no_journal", "-t ext4 -b 4096 -g 2048 -O ^has_journal", "ext4"},
    {"ext4_1k", "-t ext4 -b 1024", "ext4"},
    {"ext2", "-t ext2", "ext2"},
    {"ext3", "-t ext3", "ext3"},
    {"ext4_uninit_bg", "-t ext4 -b 4096 -g 2048 -O ^metadata_csum,uninit_bg", "ext4"},  // the older checksums
    {"ext4_2k", "-t ext4 -b 2048", "ext4"},
};

// A folder of files with pseudo-random content, some of which the made file systems then lose.
class FsImages : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_TOOLS("mke2fs", "debugfs", "dumpe2fs", "sfdisk", "mkswap");
    content_ = dir_.file("content");
    std::filesystem::create_directories(content_ + "/dir/sub");
    std::mt19937_64 rng(42);
    for (int i = 0; i < 24; ++i) {
      std::string path = content_ + (i % 3 == 0 ? "/dir/" : i % 3 == 1 ? "/dir/sub/" : "/") + "f" + std::to_string(i);
      size_t size = 1000 + (rng() % (600 << 10));
      std::string data(size, '\0');
      for (auto& c : data) c = static_cast<char>(rng());
      std::ofstream(path, std::ios::binary) << data;
    }
  }

  // A file system image of `mib` MiB made by mke2fs -d, with a few files deleted by debugfs.
  std::string make_fs(const std::string& name, const std::string& options, uint64_t mib = 24) {
    std::string img = dir_.file(name + ".fs");
    run_ok("mke2fs -q -F " + options + " -d " + q(content_) + " " + q(img) + " " + std::to_string(mib) + "M 2>&1");
    std::string cmds = dir_.file(name + ".debugfs");
    std::ofstream(cmds) << "rm /f2\nrm /dir/f3\nrm /dir/sub/f7\nrm /f11\nrm /dir/sub/f13\n";
    run_ok("debugfs -w -f " + q(cmds) + " " + q(img) + " >/dev/null 2>&1");
    return img;
  }

  // Copies a file system image into a disk image at `offset` (sparse, in place).
  void place(const std::string& fs_image, const std::string& disk, uint64_t offset) {
    run_ok("dd if=" + q(fs_image) + " of=" + q(disk) + " bs=1M seek=" + std::to_string(offset) +
           " oflag=seek_bytes conv=notrunc,sparse status=none");
  }

  std::string make_disk(const std::string& name, uint64_t mib, const std::string& sfdisk_script) {
    std::string disk = dir_.file(name);
    run_ok("truncate -s " + std::to_string(mib) + "M " + q(disk));
    run_ok("printf " + q(sfdisk_script) + " | sfdisk -q " + q(disk) + " 2>&1");
    return disk;
  }

  // The map must call used exactly what dumpe2fs does inside the partition (and the tail past the file
  // system, if any).
  void expect_matches(const vfs::UsageMap& m, const std::string& fs_image, uint64_t offset, uint64_t size) {
    Referee r = dumpe2fs(fs_image);
    Ranges expected = r.used;
    if (r.bytes() < size) expected.push_back({r.bytes(), size - r.bytes()});
    expected = merged(expected);
    Ranges got = window(m.used, offset, size);
    EXPECT_EQ(show(got), show(expected)) << fs_image << " at " << offset;
  }

  // dumpe2fs's used ranges of a file system image placed at `offset`, in bytes of the disk.
  Ranges referee_at(const std::string& fs_image, uint64_t offset, uint64_t size) {
    Referee r = dumpe2fs(fs_image);
    Ranges out;
    for (auto x : r.used) out.push_back({x.offset + offset, x.length});
    if (r.bytes() < size) out.push_back({offset + r.bytes(), size - r.bytes()});
    return out;
  }

  TempDir dir_;
  std::string content_;
};

// Every variant on the bare disk (as WSL2's ext4.vhdx): the map equals dumpe2fs's.
TEST_F(FsImages, BareVariantsMatchDumpe2fs) {
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(v.name);
    std::string img = make_fs(v.name, v.mkfs);
    vfs::UsageMap m = map_ok(img);
    ASSERT_EQ(m.volumes.size(), 1u);
    EXPECT_EQ(m.volumes[0].table, "none");
    EXPECT_EQ(m.volumes[0].filesystem, v.flavour);
    EXPECT_EQ(m.volumes[0].state, vfs::Volume::State::Read) << m.volumes[0].reason;
    EXPECT_TRUE(m.any_filesystem_read);
    uint64_t size = std::filesystem::file_size(img);
    expect_matches(m, img, 0, size);
    EXPECT_GT(m.volumes[0].free_bytes, 10 * MiB);
    EXPECT_EQ(m.volumes[0].used_bytes + m.volumes[0].free_bytes, size);
  }
}

// MBR: two primaries, an extended partition with two logicals. Outside the partitions only the first MiB
// (MBR and boot loader area) and the EBR sectors are used.
TEST_F(FsImages, MbrPrimaryAndLogicalMatchDumpe2fs) {
  const uint64_t s = 512;
  std::string disk = make_disk("mbr.img", 140,
                               "label: dos\n"
                               "start=2048, size=49152, type=83\n"      // 1 MiB, 24 MiB: ext4
                               "start=55296, size=49152, type=83\n"     // 27 MiB: ext2 (a gap before it)
                               "start=106496, size=180224, type=5\n"    // 52 MiB: extended
                               "start=110592, size=49152, type=83\n"    // 54 MiB: ext3
                               "start=163840, size=49152, type=83\n");  // 80 MiB: bigalloc
  struct P {
    const Variant* v;
    uint64_t start;
  } parts[] = {{&kVariants[0], 2048}, {&kVariants[7], 55296}, {&kVariants[8], 110592}, {&kVariants[4], 163840}};
  std::vector<std::string> images;
  for (auto& p : parts) {
    images.push_back(make_fs(p.v->name, p.v->mkfs));
    place(images.back(), disk, p.start * s);
  }
  vfs::UsageMap m = map_ok(disk);
  EXPECT_EQ(m.volumes.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(parts[i].v->name);
    expect_matches(m, images[i], parts[i].start * s, 24 * MiB);
    if (auto* v = volume_at(m, parts[i].start * s)) {
      EXPECT_EQ(v->table, "mbr");
      EXPECT_EQ(v->filesystem, parts[i].v->flavour);
      EXPECT_EQ(v->state, vfs::Volume::State::Read) << v->reason;
    }
  }
  // Outside the partitions: the first MiB and the EBRs (found as the sectors of the extended partition,
  // outside the logicals, with the boot signature), nothing else.
  auto bytes = vhdkit::testing::read_file(disk);
  Ranges outside = {{0, MiB}};
  for (uint64_t sec = 106496; sec < 106496 + 180224; ++sec) {
    bool in_logical = (sec >= 110592 && sec < 110592 + 49152) || (sec >= 163840 && sec < 163840 + 49152);
    if (!in_logical && bytes[sec * s + 510] == std::byte{0x55} && bytes[sec * s + 511] == std::byte{0xAA}) {
      outside.push_back({sec * s, s});
    }
  }
  EXPECT_EQ(outside.size(), 3u);  // two EBRs
  for (size_t i = 0; i < 4; ++i) {
    for (auto r : referee_at(images[i], parts[i].start * s, 24 * MiB)) outside.push_back(r);
  }
  EXPECT_EQ(show(m.used), show(merged(outside)));
}

// GPT with several partitions: ext4 (meta_bg), swap, LVM, an unknown type, ext4 with 1 KiB blocks.
TEST_F(FsImages, GptSeveralPartitions) {
  const uint64_t s = 512;
  std::string disk = make_disk("gpt.img", 100,
                               "label: gpt\n"
                               "start=2048, size=24MiB, type=linux\n"
                               "start=51200, size=8MiB, type=swap\n"
                               "start=67584, size=4MiB, type=lvm\n"
                               "start=75776, size=4MiB, type=12345678-1234-1234-1234-123456789ABC\n"
                               "start=83968, size=24MiB, type=linux\n");
  std::string a = make_fs("meta_bg", kVariants[3].mkfs), b = make_fs("k1", kVariants[6].mkfs);
  place(a, disk, 2048 * s);
  place(b, disk, 83968 * s);
  std::string swap = dir_.file("swap");
  run_ok("truncate -s 8M " + q(swap) + " && mkswap -q " + q(swap) + " 2>&1");
  place(swap, disk, 51200 * s);
  // Data in the LVM and unknown partitions, and in the gap between partitions (which is unused).
  run_ok("dd if=/dev/urandom of=" + q(disk) + " bs=1M seek=33 count=8 conv=notrunc status=none");

  vfs::UsageMap m = map_ok(disk);
  ASSERT_EQ(m.volumes.size(), 5u);
  expect_matches(m, a, 2048 * s, 24 * MiB);
  expect_matches(m, b, 83968 * s, 24 * MiB);
  const uint64_t last_usable = 100 * MiB / s - 34;
  Ranges outside = {{0, MiB},
                    {(last_usable + 1) * s, 100 * MiB - (last_usable + 1) * s},
                    {51200 * s, 4096},      // the swap header page only
                    {67584 * s, 8 * MiB}};  // LVM and unknown: whole
  for (auto r : referee_at(a, 2048 * s, 24 * MiB)) outside.push_back(r);
  for (auto r : referee_at(b, 83968 * s, 24 * MiB)) outside.push_back(r);
  EXPECT_EQ(show(m.used), show(merged(outside)));
  auto* sw = volume_at(m, 51200 * s);
  ASSERT_TRUE(sw);
  EXPECT_EQ(sw->filesystem, "swap");
  EXPECT_EQ(sw->type, "Linux swap");
  EXPECT_EQ(sw->state, vfs::Volume::State::Read);
  auto* lvm = volume_at(m, 67584 * s);
  ASSERT_TRUE(lvm);
  EXPECT_EQ(lvm->type, "LVM");
  EXPECT_EQ(lvm->state, vfs::Volume::State::KeptWhole);
  EXPECT_NE(lvm->reason.find("LVM"), std::string::npos);
  auto* unk = volume_at(m, 75776 * s);
  ASSERT_TRUE(unk);
  EXPECT_EQ(unk->state, vfs::Volume::State::KeptWhole);
  EXPECT_NE(unk->type.find("unknown"), std::string::npos) << unk->type;
  EXPECT_TRUE(m.notes.empty()) << m.notes[0];
}

// GPT made by sgdisk (first usable LBA 34), primary header damaged: read through the backup, said in notes.
TEST_F(FsImages, GptPrimaryDamagedUsesBackup) {
  REQUIRE_TOOLS("sgdisk");
  const uint64_t s = 512;
  std::string disk = dir_.file("sg.img");
  run_ok("truncate -s 40M " + q(disk) + " && sgdisk -o -n 1:2048:+24M -t 1:8300 -n 2:0:+4M -t 2:8e00 " + q(disk) +
         " >/dev/null 2>&1");
  std::string a = make_fs("ext4", kVariants[0].mkfs);
  place(a, disk, 2048 * s);
  vfs::UsageMap clean = map_ok(disk);
  EXPECT_TRUE(clean.notes.empty());
  vhdkit::testing::patch_file(disk, 512 + 40, {0xff});  // FirstUsableLBA: breaks the header CRC
  vfs::UsageMap m = map_ok(disk);
  ASSERT_EQ(m.volumes.size(), 2u);
  ASSERT_FALSE(m.notes.empty());
  EXPECT_NE(m.notes[0].find("primary"), std::string::npos) << m.notes[0];
  EXPECT_NE(m.notes[0].find("backup"), std::string::npos) << m.notes[0];
  EXPECT_EQ(show(m.used), show(clean.used));
  expect_matches(m, a, 2048 * s, 24 * MiB);
  EXPECT_TRUE(m.any_filesystem_read);
}

// Kept whole, with the reason: dirty journal, error state, not cleanly unmounted, damaged descriptors.
TEST_F(FsImages, UncleanFileSystemsKeptWhole) {
  struct Case {
    const char* name;
    const char* mkfs;
    std::string damage;  // a debugfs command, "gd" (patch the byte at gd_byte) or "journal"
    const char* reason;
    uint64_t gd_byte = 0;
  } cases[] = {
      {"recover", "-t ext4 -b 4096", "feature needs_recovery", "journal needs recovery"},
      {"errors", "-t ext4 -b 4096", "ssv state 3", "recorded errors"},
      {"unclean", "-t ext2", "ssv state 0", "not cleanly unmounted"},
      // Group 0's descriptor (block 1 of a 4 KiB file system; one group in 24 MiB): its checksum fails.
      {"gd_csum", "-t ext4 -b 4096", "gd", "group descriptor", 4096 + 2},
      // ext2 has no checksums: group 0's block bitmap pointer moved past the end of the file system.
      {"gd_range", "-t ext2 -b 4096", "gd", "group descriptors are inconsistent", 4096 + 3},
      {"journal_data", "-t ext3 -b 4096", "journal", "journal holds transactions"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string img = make_fs(c.name, c.mkfs);
    if (c.damage == "gd") {
      vhdkit::testing::patch_file(img, c.gd_byte, {0x7f});
    } else if (c.damage == "journal") {
      // A journal with a log still to replay but no needs_recovery flag: s_start (byte 28) set non-zero.
      std::string jblk = run_ok("debugfs -R 'bmap <8> 0' " + q(img) + " 2>/dev/null");
      vhdkit::testing::patch_file(img, std::stoull(jblk) * 4096 + 28, {0, 0, 0, 1});
    } else {
      run_ok("debugfs -w -R " + q(c.damage) + " " + q(img) + " >/dev/null 2>&1");
    }
    vfs::UsageMap m = map_ok(img);
    ASSERT_EQ(m.volumes.size(), 1u);
    EXPECT_EQ(m.volumes[0].state, vfs::Volume::State::KeptWhole);
    EXPECT_NE(m.volumes[0].reason.find(c.reason), std::string::npos) << m.volumes[0].reason;
    EXPECT_EQ(show(m.used), show({{0, std::filesystem::file_size(img)}}));
    EXPECT_FALSE(m.any_filesystem_read);
  }
}

// A file system larger than its partition, a swap holding a hibernation image, no file system at all.
TEST_F(FsImages, OtherKeptWholeCases) {
  const uint64_t s = 512;
  std::string disk = make_disk("small.img", 40,
                               "label: dos\nstart=2048, size=16MiB, type=83\nstart=34816, size=8MiB, type=82\n"
                               "start=51200, size=8MiB, type=83\n");
  place(make_fs("big", "-t ext4 -b 4096"), disk, 2048 * s);  // 24 MiB into 16 MiB
  std::string swap = dir_.file("hib");
  run_ok("truncate -s 8M " + q(swap) + " && mkswap -q " + q(swap) + " 2>&1");
  vhdkit::testing::patch_file(swap, 4096 - 10, {'S', '1', 'S', 'U', 'S', 'P', 'E', 'N', 'D', 0});
  place(swap, disk, 34816 * s);
  vfs::UsageMap m = map_ok(disk);
  ASSERT_EQ(m.volumes.size(), 3u);
  EXPECT_NE(m.volumes[0].reason.find("larger than its partition"), std::string::npos) << m.volumes[0].reason;
  EXPECT_NE(m.volumes[1].reason.find("hibernation"), std::string::npos) << m.volumes[1].reason;
  EXPECT_EQ(m.volumes[2].reason, "no file system recognised");
  for (auto& v : m.volumes) EXPECT_EQ(v.state, vfs::Volume::State::KeptWhole);
  EXPECT_EQ(show(m.used), show(merged({{0, MiB}, {2048 * s, 16 * MiB}, {34816 * s, 8 * MiB}, {51200 * s, 8 * MiB}})));
  EXPECT_FALSE(m.any_filesystem_read);
}

// An extended partition whose EBR chain loops: the extended partition is kept whole, quickly.
TEST_F(FsImages, MbrExtendedLoopKeptWhole) {
  const uint64_t s = 512;
  std::string disk = make_disk("loop.img", 60,
                               "label: dos\nstart=2048, size=24MiB, type=83\nstart=51200, type=5\n"
                               "start=53248, size=8MiB, type=83\nstart=71680, size=8MiB, type=83\n");
  std::string a = make_fs("ext4", kVariants[0].mkfs);
  place(a, disk, 2048 * s);
  // The second EBR (at 71680 - 2048) links back to the first (relative 0 is the end; the first EBR sits
  // at the extended partition's start, so point at another EBR: the second links to itself).
  uint64_t second = 71680 - 2048;
  uint32_t rel = static_cast<uint32_t>(second - 51200);
  vhdkit::testing::patch_file(disk, second * s + 446 + 16 + 4, {0x05});
  vhdkit::testing::patch_file(disk, second * s + 446 + 16 + 8,
                              {uint8_t(rel), uint8_t(rel >> 8), uint8_t(rel >> 16), uint8_t(rel >> 24)});
  auto t0 = std::chrono::steady_clock::now();
  vfs::UsageMap m = map_ok(disk);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  ASSERT_EQ(m.volumes.size(), 2u);
  EXPECT_EQ(m.volumes[1].type, "extended");
  EXPECT_EQ(m.volumes[1].state, vfs::Volume::State::KeptWhole);
  EXPECT_NE(m.volumes[1].reason.find("loops"), std::string::npos) << m.volumes[1].reason;
  ASSERT_FALSE(m.notes.empty());
  expect_matches(m, a, 2048 * s, 24 * MiB);
  EXPECT_EQ(show(window(m.used, 51200 * s, 60 * MiB - 51200 * s)), show({{0, 60 * MiB - 51200 * s}}));
}

// The same map through a VHDX (qemu-img convert) and on two threads at once.
TEST_F(FsImages, VhdxAndConcurrentMaps) {
  REQUIRE_TOOLS("qemu-img");
  std::string a = make_fs("ext4", kVariants[0].mkfs), b = make_fs("bigalloc", kVariants[4].mkfs);
  std::string vhdx = dir_.file("a.vhdx"), vhd = dir_.file("a.vhd");
  run_ok("qemu-img convert -O vhdx " + q(a) + " " + q(vhdx));
  run_ok("qemu-img convert -O vpc -o subformat=dynamic " + q(a) + " " + q(vhd));
  vfs::UsageMap raw = map_ok(a), via = map_ok(vhdx), via_vhd = map_ok(vhd), other = map_ok(b);
  EXPECT_EQ(show(via.used), show(raw.used));
  // A VHD's virtual size is rounded to its CHS geometry: the same ranges, plus perhaps a used tail.
  ASSERT_FALSE(via_vhd.used.empty());
  EXPECT_EQ(show(window(via_vhd.used, 0, std::filesystem::file_size(a))), show(raw.used));
  std::vector<std::string> results(2);
  std::thread t1([&] {
    for (int i = 0; i < 10; ++i) {
      auto m = map_image(vhdx);
      results[0] += m && show(m->used) == show(raw.used) ? "" : "x";
    }
  });
  std::thread t2([&] {
    for (int i = 0; i < 10; ++i) {
      auto m = map_image(b);
      results[1] += m && show(m->used) == show(other.used) ? "" : "x";
    }
  });
  t1.join();
  t2.join();
  EXPECT_EQ(results[0], "");
  EXPECT_EQ(results[1], "");
}

// A disk with no table and no file system: all used, no file system read.
TEST_F(FsImages, NothingRecognisedKeptWhole) {
  std::string disk = dir_.file("junk.img");
  run_ok("truncate -s 8M " + q(disk) + " && dd if=/dev/urandom of=" + q(disk) +
         " bs=64K count=4 conv=notrunc status=none");
  vfs::UsageMap m = map_ok(disk);
  EXPECT_EQ(show(m.used), show({{0, 8 * MiB}}));
  EXPECT_FALSE(m.any_filesystem_read);
  ASSERT_FALSE(m.notes.empty());
}

// Speed: an 8 GiB ext4 (sparse file) maps in well under a second of CPU. Without group descriptor
// checksums no group is BLOCK_UNINIT, so every group's bitmap is read (the slow case).
// VHDKIT_FS_BIG_GIB=256 measures another size.
TEST_F(FsImages, Maps8GiBQuickly) {
  std::string img = dir_.file("big.fs");
  const char* env = std::getenv("VHDKIT_FS_BIG_GIB");
  uint64_t gib = env ? std::stoull(env) : 8;
  run_ok("truncate -s " + std::to_string(gib) + "G " + q(img) +
         " && mke2fs -q -F -t ext4 -O ^metadata_csum,^uninit_bg " + "-E lazy_itable_init=1,lazy_journal_init=1 -d " +
         q(content_) + " " + q(img) + " 2>&1");
  // VHDKIT_FS_BIG_FORMAT=vhdx (or vpc) maps the same file system through that format instead.
  std::string target = img;
  if (const char* format = std::getenv("VHDKIT_FS_BIG_FORMAT")) {
    target = dir_.file("big." + std::string(format));
    run_ok("qemu-img convert -O " + q(format) + " " + q(img) + " " + q(target));
  }
  auto t0 = std::chrono::steady_clock::now();
  std::clock_t c0 = std::clock();
  vfs::UsageMap m = map_ok(target);
  double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%llu GiB ext4: mapped in %.3f s (%.3f s CPU), %zu used ranges\n", static_cast<unsigned long long>(gib),
              wall, cpu, m.used.size());
  ASSERT_EQ(m.volumes.size(), 1u);
  EXPECT_EQ(m.volumes[0].state, vfs::Volume::State::Read);
  EXPECT_LT(cpu, 2.0);
  expect_matches(m, img, 0, gib << 30);
}

}  // namespace
