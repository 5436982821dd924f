// SPDX-License-Identifier: Apache-2.0
#include "guest_disk.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "image/open_image.h"
#include "io/file.h"

namespace vhdkit::testing {
namespace {

std::string random_bytes(std::mt19937_64& rng, size_t size) {
  std::string data(size, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  return data;
}

std::string sha256_of(const std::string& path) {
  std::string out = run_ok("sha256sum " + q(path));
  return out.substr(0, 64);
}

}  // namespace

GuestFiles make_guest_files(const TempDir& dir, uint64_t seed) {
  GuestFiles g;
  g.folder = dir.file("files-" + std::to_string(seed));
  std::filesystem::create_directories(g.folder + "/dir");
  std::mt19937_64 rng(seed);
  // Kept files small and scattered; a large deleted file so that whole blocks hold only deleted data.
  const std::pair<const char*, size_t> files[] = {{"/keep1", 1 << 20},       {"/big_deleted", 4 << 20},
                                                  {"/keep2", 700 << 10},     {"/dir/del2", 1 << 20},
                                                  {"/dir/keep3", 300 << 10}, {"/dir/keep4", 5000}};
  for (auto [name, size] : files) {
    std::string path = g.folder + name;
    std::ofstream(path, std::ios::binary) << random_bytes(rng, size);
    if (std::string(name).find("del") != std::string::npos) {
      g.deleted.push_back(name);
    } else {
      g.kept[name] = sha256_of(path);
    }
  }
  return g;
}

std::string make_ext(const TempDir& dir, const std::string& name, const std::string& mkfs_options,
                     const GuestFiles& files, uint64_t mib) {
  std::string img = dir.file(name + ".fs");
  run_ok("mke2fs -q -F " + mkfs_options + " -d " + q(files.folder) + " " + q(img) + " " + std::to_string(mib) +
         "M 2>&1");
  std::string cmds = dir.file(name + ".debugfs");
  {
    std::ofstream out(cmds);
    for (const std::string& f : files.deleted) out << "rm " << f << "\n";
  }
  run_ok("debugfs -w -f " + q(cmds) + " " + q(img) + " >/dev/null 2>&1");
  return img;
}

std::string make_partitioned(const TempDir& dir, const std::string& name, uint64_t mib, const std::string& script) {
  std::string disk = dir.file(name);
  run_ok("truncate -s " + std::to_string(mib) + "M " + q(disk));
  if (!script.empty()) run_ok("printf " + q(script) + " | sfdisk -q " + q(disk) + " 2>&1");
  return disk;
}

void place(const std::string& image, const std::string& disk, uint64_t offset) {
  run_ok("dd if=" + q(image) + " of=" + q(disk) + " bs=1M seek=" + std::to_string(offset) +
         " oflag=seek_bytes conv=notrunc,sparse status=none");
}

void fill_random(const std::string& disk, uint64_t offset, uint64_t length, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::fstream f(disk, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  std::string data = random_bytes(rng, length);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string convert(const std::string& raw, const std::string& out, const std::string& format) {
  std::string options = format == "vhd" ? "-O vpc -o subformat=dynamic" : "-O vhdx -o block_size=1M";
  run_ok("qemu-img convert -f raw " + options + " " + q(raw) + " " + q(out));
  return out;
}

vhdkit::fs::UsageMap map_raw(const std::string& raw) {
  disk::OpenOptions o;
  o.format = disk::Format::Raw;
  auto d = image::open_image(io::Env::posix(), raw, o);
  EXPECT_TRUE(d.has_value()) << d.error().what();
  if (!d) return {};
  auto m = vhdkit::fs::map_usage(**d);
  EXPECT_TRUE(m.has_value()) << m.error().what();
  return m ? *m : vhdkit::fs::UsageMap{};
}

std::vector<std::byte> file_bytes(const std::string& path, uint64_t offset, uint64_t length) {
  std::vector<std::byte> out(length);
  std::ifstream f(path, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(length));
  EXPECT_EQ(static_cast<uint64_t>(f.gcount()), length) << path;
  return out;
}

void expect_qemu_check_passes(const std::string& image) {
  const bool vhdx = image.ends_with(".vhdx");
  RunResult check = run("qemu-img check -f " + std::string(vhdx ? "vhdx" : "vpc") + " " + q(image));
  // qemu's vpc driver has no check: that exact refusal is the only accepted failure.
  if (vhdx) {
    EXPECT_EQ(check.status, 0) << check.out << check.err;
  } else if (check.status != 0) {
    EXPECT_NE(check.err.find("does not support checks"), std::string::npos) << check.err;
  }
}

void expect_guest_intact(const TempDir& dir, const std::string& image, const std::string& before_raw,
                         const std::vector<vhdkit::fs::ByteRange>& used, const std::vector<GuestFs>& filesystems) {
  expect_qemu_check_passes(image);
  EXPECT_NE(run_ok("vhdiinfo " + q(image)).find("Disk type"), std::string::npos);
  expect_raw_intact(dir, qemu_raw(image, dir, "after.raw"), before_raw, used, filesystems);
}

void expect_raw_intact(const TempDir& dir, const std::string& after_raw, const std::string& before_raw,
                       const std::vector<vhdkit::fs::ByteRange>& used, const std::vector<GuestFs>& filesystems) {
  // qemu gives a VHD the CHS geometry's size, which may round the disk up: never down.
  EXPECT_GE(std::filesystem::file_size(after_raw), std::filesystem::file_size(before_raw));
  uint64_t differing = 0;
  for (const vhdkit::fs::ByteRange& r : used)
    if (file_bytes(after_raw, r.offset, r.length) != file_bytes(before_raw, r.offset, r.length)) ++differing;
  EXPECT_EQ(differing, 0u) << "used ranges that read differently after the compaction";
  int n = 0;
  for (const GuestFs& g : filesystems) {
    std::string part = dir.file("part" + std::to_string(n) + ".fs");
    run_ok("dd if=" + q(after_raw) + " of=" + q(part) + " bs=1M iflag=skip_bytes,count_bytes skip=" +
           std::to_string(g.offset) + " count=" + std::to_string(g.size) + " status=none");
    RunResult fsck = run("e2fsck -fn " + q(part) + " 2>&1");
    EXPECT_EQ(fsck.status, 0) << "e2fsck -fn on the file system at " << g.offset << ":\n" << fsck.out << fsck.err;
    std::string out = dir.file("rdump" + std::to_string(n));
    std::filesystem::remove_all(out);
    std::filesystem::create_directories(out);
    run_ok("debugfs -R " + q("rdump / " + out) + " " + q(part) + " >/dev/null 2>&1");
    for (const auto& [name, sha] : g.files->kept) {
      std::string got = out + name;
      EXPECT_TRUE(std::filesystem::exists(got)) << name << " lost";
      if (std::filesystem::exists(got)) {
        EXPECT_EQ(sha256_of(got), sha) << name;
      }
    }
    ++n;
  }
}

}  // namespace vhdkit::testing
