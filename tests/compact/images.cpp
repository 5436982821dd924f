// SPDX-License-Identifier: Apache-2.0
#include "images.h"
#include "image/open_image.h"

#include <algorithm>
#include <filesystem>
#include <random>

#include "disk/virtual_disk.h"
#include "vhd/vhd_create.h"

namespace vhdkit::testing {

void make_raw_pattern(const std::string& raw, const std::string& pattern, uint64_t block) {
  auto random_at = [&](uint64_t offset, uint64_t length) {
    // dd counts in 512-byte sectors here, so that every offset and length of a block lands exactly.
    run_ok("dd if=/dev/urandom of=" + q(raw) + " bs=512 seek=" + std::to_string(offset / 512) +
           " count=" + std::to_string(length / 512) + " conv=notrunc status=none");
  };
  run_ok("truncate -s " + std::to_string(pattern.size() * block) + " " + q(raw));
  for (size_t i = 0; i < pattern.size(); ++i) {
    const uint64_t start = i * block;
    switch (pattern[i]) {
      case 'D': random_at(start, std::min<uint64_t>(block, 2 * kMiB)); break;
      case 'P': random_at(start + block / 2 - 512, 512); break;
      case 'H': random_at(start, block / 2); break;
      case 'Z': break;
      default: ADD_FAILURE() << "unknown block kind '" << pattern[i] << "' in " << pattern;
    }
  }
}

namespace {
std::string qemu_name(disk::Format format) { return format == disk::Format::Vhdx ? "vhdx" : "vpc"; }
std::string create_options(disk::Format format, uint64_t block) {
  return format == disk::Format::Vhdx ? "block_size=" + std::to_string(block) : "subformat=dynamic,force_size=on";
}
}  // namespace

std::string make_dynamic(const TempDir& dir, const std::string& name, const std::string& pattern, disk::Format format,
                         uint64_t block) {
  std::string raw = dir.file(name + ".raw"), image = dir.file(name);
  make_raw_pattern(raw, pattern, block);
  run_ok("qemu-img convert -q -f raw -S 0 -O " + qemu_name(format) + " -o " + create_options(format, block) + " " +
         q(raw) + " " + q(image));
  std::filesystem::remove(raw);
  return image;
}

std::string make_shuffled(const TempDir& dir, const std::string& name, const std::string& pattern,
                          const std::vector<int>& order, disk::Format format) {
  const uint64_t block = 2 * kMiB;
  std::string raw = dir.file(name + ".raw"), image = dir.file(name);
  make_raw_pattern(raw, pattern, block);
  run_ok("qemu-img create -q -f " + qemu_name(format) + " -o " + create_options(format, block) + " " + q(image) + " " +
         std::to_string(pattern.size() * block));
  for (int b : order) {
    // Copy block b of the raw image into the image; a zero block is written as explicit zeros (allocated).
    std::string off = std::to_string(uint64_t(b) * block);
    run_ok("dd if=" + q(raw) + " of=" + q(dir.file("blk")) + " bs=1M skip=" + std::to_string(2 * b) +
           " count=2 status=none");
    run_ok("qemu-io -f " + qemu_name(format) + " -c " + q("write -s " + dir.file("blk") + " " + off + " 2M") + " " +
           q(image));
  }
  std::filesystem::remove(raw);
  std::filesystem::remove(dir.file("blk"));
  return image;
}

std::string qemu_format(const std::string& image) {
  auto f = io::Env::posix().open(image, io::Access::ReadOnly);
  EXPECT_TRUE(f.has_value()) << image;
  if (!f) return "vpc";
  auto format = image::detect_format(**f);
  return format && *format == disk::Format::Vhdx ? "vhdx" : "vpc";
}

std::string keep_copy(const std::string& path) {
  std::string copy = path + ".orig";
  run_ok("cp --sparse=always " + q(path) + " " + q(copy));
  return copy;
}

uint64_t file_size(const std::string& path) { return std::filesystem::file_size(path); }

void expect_same_content(const std::string& a, const std::string& b) {
  RunResult r = run("qemu-img compare -f " + qemu_format(a) + " -F " + qemu_format(b) + " " + q(a) + " " + q(b));
  EXPECT_EQ(r.status, 0) << "qemu-img compare " << a << " " << b << ":\n" << r.out << r.err;
}

void expect_tools_accept(const std::string& image, QemuReads qemu) {
  const std::string format = qemu_format(image);
  if (qemu != QemuReads::No) {
    RunResult check = run("qemu-img check -f " + format + " " + q(image));
    if (format == "vhdx" || check.status != 0) {
      EXPECT_EQ(check.status, format == "vhdx" ? 0 : 63) << check.out << check.err;
      if (format == "vpc") {
        EXPECT_NE(check.err.find("does not support checks"), std::string::npos) << check.err;
      }
    }
    std::string info = run_ok("qemu-img info -f " + format + " --output=json " + q(image));
    EXPECT_NE(info.find("\"format\": \"" + format + "\""), std::string::npos) << info;
  }
  std::string vi = run_ok("vhdiinfo " + q(image));
  EXPECT_NE(vi.find("Disk type"), std::string::npos) << vi;
}

DifferencingPair make_differencing_pair(const TempDir& dir) {
  DifferencingPair pair;
  pair.parent = make_dynamic_vhd(dir, "parent.vhd", "DDDDZDDD");
  pair.child = dir.file("child.vhd");
  io::Env& env = io::Env::posix();
  const std::vector<std::byte> parent = virtual_content(env, pair.parent);
  vhd::CreateParams params;
  params.type = disk::DiskType::Differencing;
  params.parent_path = pair.parent;
  auto child = vhd::create(env, pair.child, params);
  EXPECT_TRUE(child.has_value()) << child.error().what();
  if (!child) return pair;
  vhd::Image& c = **child;
  const uint64_t block = 2 * kMiB;
  auto parent_block = [&](uint64_t b) { return std::span(parent).subspan(b * block, block); };
  auto write = [&](uint64_t offset, std::span<const std::byte> data) {
    auto s = c.write(offset, data);
    EXPECT_TRUE(s.has_value()) << s.error().what();
  };
  std::vector<std::byte> zeros(block), own(block);
  std::mt19937_64 rng(7);
  for (auto& b : own) b = static_cast<std::byte>(rng());
  write(0 * block, parent_block(0));
  write(1 * block, zeros);
  write(2 * block, own);
  write(3 * block, parent_block(3).first(64 * 1024));
  write(4 * block, zeros);
  std::vector<std::byte> almost(parent_block(5).begin(), parent_block(5).end());
  almost[4096] = ~almost[4096];
  write(5 * block, almost);
  auto allocated = c.allocate_block(7);
  EXPECT_TRUE(allocated.has_value()) << allocated.error().what();
  EXPECT_TRUE(c.flush().has_value());
  return pair;
}

void recover(io::Env& env, const std::string& path) {
  disk::OpenOptions options;
  options.access = io::Access::ReadWrite;
  auto disk = image::open_image(env, path, options);
  EXPECT_TRUE(disk.has_value()) << disk.error().what();
}

std::vector<std::byte> virtual_content(io::Env& env, const std::string& path) {
  auto disk = image::open_image(env, path);
  EXPECT_TRUE(disk.has_value()) << disk.error().what();
  if (!disk) return {};
  std::vector<std::byte> out((*disk)->virtual_size());
  auto s = (*disk)->read(0, out);
  EXPECT_TRUE(s.has_value()) << s.error().what();
  return out;
}

std::vector<std::string> our_check(io::Env& env, const std::string& path) {
  auto disk = image::open_image(env, path);
  if (!disk) return {disk.error().what()};
  return (*disk)->check();
}

}  // namespace vhdkit::testing
