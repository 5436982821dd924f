#include "images.h"

#include <filesystem>

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

}  // namespace vhdkit::testing
