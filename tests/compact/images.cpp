#include "images.h"

#include <filesystem>

#include <random>

#include "disk/virtual_disk.h"
#include "vhd/vhd_create.h"

namespace vhdkit::testing {

void make_raw_pattern(const std::string& raw, const std::string& pattern) {
  run_ok("truncate -s " + std::to_string(pattern.size() * 2) + "M " + q(raw));
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == 'D') {
      run_ok("dd if=/dev/urandom of=" + q(raw) + " bs=1M seek=" + std::to_string(2 * i) +
             " count=2 conv=notrunc status=none");
    } else if (pattern[i] == 'P') {
      run_ok("dd if=/dev/urandom of=" + q(raw) + " bs=512 seek=" + std::to_string(i * 4096 + 2000) +
             " count=1 conv=notrunc status=none");
    }
  }
}

std::string make_dynamic_vhd(const TempDir& dir, const std::string& name, const std::string& pattern) {
  std::string raw = dir.file(name + ".raw"), vhd = dir.file(name);
  make_raw_pattern(raw, pattern);
  run_ok("qemu-img convert -q -f raw -S 0 -O vpc -o subformat=dynamic,force_size=on " + q(raw) + " " + q(vhd));
  std::filesystem::remove(raw);
  return vhd;
}

std::string make_shuffled_vhd(const TempDir& dir, const std::string& name, const std::string& pattern,
                              const std::vector<int>& order) {
  std::string raw = dir.file(name + ".raw"), vhd = dir.file(name);
  make_raw_pattern(raw, pattern);
  run_ok("qemu-img create -q -f vpc -o subformat=dynamic,force_size=on " + q(vhd) + " " +
         std::to_string(pattern.size() * 2) + "M");
  std::string cmds;
  for (int b : order) {
    // Copy block b of the raw image into the VHD; a zero block is written as explicit zeros (allocated).
    std::string off = std::to_string(uint64_t(b) * 2 * kMiB);
    run_ok("dd if=" + q(raw) + " of=" + q(dir.file("blk")) + " bs=1M skip=" + std::to_string(2 * b) +
           " count=2 status=none");
    run_ok("qemu-io -f vpc -c " + q("write -s " + dir.file("blk") + " " + off + " 2M") + " " + q(vhd));
  }
  std::filesystem::remove(raw);
  std::filesystem::remove(dir.file("blk"));
  return vhd;
}

std::string keep_copy(const std::string& path) {
  std::string copy = path + ".orig";
  run_ok("cp --sparse=always " + q(path) + " " + q(copy));
  return copy;
}

uint64_t file_size(const std::string& path) { return std::filesystem::file_size(path); }

void expect_same_content(const std::string& a, const std::string& b) {
  RunResult r = run("qemu-img compare -f vpc -F vpc " + q(a) + " " + q(b));
  EXPECT_EQ(r.status, 0) << "qemu-img compare " << a << " " << b << ":\n" << r.out << r.err;
}

void expect_tools_accept(const std::string& image) {
  RunResult check = run("qemu-img check -f vpc " + q(image));
  if (check.status != 0) {
    EXPECT_EQ(check.status, 63) << check.out << check.err;
    EXPECT_NE(check.err.find("does not support checks"), std::string::npos) << check.err;
  }
  std::string info = run_ok("qemu-img info -f vpc --output=json " + q(image));
  EXPECT_NE(info.find("\"format\": \"vpc\""), std::string::npos) << info;
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

std::vector<std::byte> virtual_content(io::Env& env, const std::string& path) {
  auto disk = disk::open_image(env, path);
  EXPECT_TRUE(disk.has_value()) << disk.error().what();
  if (!disk) return {};
  std::vector<std::byte> out((*disk)->virtual_size());
  auto s = (*disk)->read(0, out);
  EXPECT_TRUE(s.has_value()) << s.error().what();
  return out;
}

std::vector<std::string> our_check(io::Env& env, const std::string& path) {
  auto disk = disk::open_image(env, path);
  if (!disk) return {disk.error().what()};
  return (*disk)->check();
}

}  // namespace vhdkit::testing
