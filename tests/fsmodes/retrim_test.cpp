// SPDX-License-Identifier: Apache-2.0
// Retrim (Mode 2) on a guest ext4 with deleted data, in a raw image, a fixed VHD, a fixed VHDX, a dynamic VHD
// and a dynamic VHDX: the host file keeps its size, its allocated bytes (st_blocks) drop by at least the
// deleted bytes (less a host block per range), qemu-img check and e2fsck -fn are clean, every file is
// identical and every range the file system uses reads as before. On a host file system that cannot punch
// holes (a vfat loop mount, or ramfs where the kernel has no vfat) Retrim is refused with 32770 and the file is
// unchanged.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "compact/compact.h"
#include "compact_checks.h"
#include "guest_disk.h"

namespace vhdkit::testing {
namespace {

using compact::Mode;
using compact::Options;
using compact::Report;

uint64_t allocated(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

constexpr uint64_t kFsMiB = 24;
constexpr uint64_t kDeleted = 5 * kMiB;  // make_guest_files deletes 4 MiB and 1 MiB

struct Container {
  const char* name;
  const char* extension;
  const char* convert;  // qemu-img convert options; "" for the raw image itself
};
const Container kContainers[] = {
    {"raw", ".raw", ""},
    {"fixed_vhd", ".vhd", "-O vpc -o subformat=fixed,force_size=on"},
    {"fixed_vhdx", ".vhdx", "-O vhdx -o subformat=fixed,block_size=1M"},
    {"dynamic_vhd", ".vhd", "-O vpc -o subformat=dynamic"},
    {"dynamic_vhdx", ".vhdx", "-O vhdx -o block_size=1M"},
};

class Retrim : public ::testing::TestWithParam<Container> {
 protected:
  void SetUp() override {
    for (const char* tool : {"mke2fs", "debugfs", "e2fsck", "qemu-img", "vhdiinfo"})
      if (run("command -v " + std::string(tool) + " >/dev/null").status != 0) GTEST_FAIL() << tool << " is missing";
    files_ = make_guest_files(dir_, 11);
    raw_ = make_ext(dir_, "guest", "-t ext4", files_, kFsMiB);
  }
  TempDir dir_;
  GuestFiles files_;
  std::string raw_;
};

TEST_P(Retrim, Ext4WithDeletedDataGivesItsSpaceBack) {
  const Container& c = GetParam();
  std::string img = dir_.file(std::string("image-") + c.name + c.extension);
  if (std::string(c.convert).empty()) {
    run_ok("cp " + q(raw_) + " " + q(img));
  } else {
    run_ok("qemu-img convert -f raw " + std::string(c.convert) + " " + q(raw_) + " " + q(img));
  }
  const std::vector<vhdkit::fs::ByteRange> used = map_raw(raw_).used;
  ASSERT_FALSE(used.empty());
  const uint64_t size = file_size(img), before = allocated(img);
  const std::string before_sha = sha256(img);

  Options o;
  o.mode = Mode::Retrim;
  Options dry = o;
  dry.action = compact::Action::DryRun;
  Report predicted = compact_ok(img, dry);
  EXPECT_EQ(sha256(img), before_sha) << "the dry run wrote";
  Report r = compact_ok(img, o);
  EXPECT_EQ(r.outcome, compact::Outcome::Completed);
  EXPECT_EQ(r.bytes_punched, predicted.bytes_punched);
  EXPECT_EQ(r.blocks_released, 0u);
  EXPECT_EQ(r.blocks_moved, 0u);
  EXPECT_EQ(file_size(img), size) << "Retrim changed the file's size";
  const uint64_t after = allocated(img);
  EXPECT_GE(before, after);
  // The deleted files' bytes, less a host block at the edges of the two files' ranges and one the host file
  // system may take back for the file's own extent tree.
  EXPECT_GE(r.bytes_punched, kDeleted - 2 * 4096) << r.mode_note;
  EXPECT_GE(before - after, kDeleted - 3 * 4096) << c.name << ": " << before << " -> " << after;
  EXPECT_NE(r.mode_note.find("Retrim: punched holes"), std::string::npos) << r.mode_note;
  std::cout << c.name << ": allocated " << before << " -> " << after << " bytes (" << r.bytes_punched << " punched)\n";

  std::vector<GuestFs> filesystems{{0, kFsMiB * kMiB, &files_}};
  if (std::string(c.extension) == ".raw") {
    expect_raw_intact(dir_, img, raw_, used, filesystems);
  } else {
    expect_guest_intact(dir_, img, raw_, used, filesystems);
    auto problems = our_check(io::Env::posix(), img);
    EXPECT_TRUE(problems.empty()) << problems.front();
  }
  // A second run finds nothing more to punch.
  Report again = compact_ok(img, o);
  EXPECT_EQ(again.bytes_punched, 0u) << again.mode_note;
}

INSTANTIATE_TEST_SUITE_P(Containers, Retrim, ::testing::ValuesIn(kContainers),
                         [](const auto& test) { return std::string(test.param.name); });

// A host file system that cannot punch holes: a small vfat on a loop device where the kernel has vfat, else
// ramfs (no fallocate at all; containers often lack the vfat module).
class NoPunchMount {
 public:
  explicit NoPunchMount(const TempDir& dir) : image_(dir.file("vfat.img")), mount_(dir.file("mnt")) {
    std::filesystem::create_directories(mount_);
    run_ok("truncate -s 64M " + q(image_));
    if (run("mkfs.vfat " + q(image_) + " >/dev/null 2>&1").status == 0 &&
        run("mount -o loop " + q(image_) + " " + q(mount_) + " 2>&1").status == 0) {
      kind_ = "vfat";
    } else if (run("mount -t ramfs none " + q(mount_) + " 2>&1").status == 0) {
      kind_ = "ramfs";
    }
  }
  ~NoPunchMount() {
    if (!kind_.empty()) (void)run("umount " + q(mount_) + " 2>&1");
  }
  const std::string& kind() const { return kind_; }
  std::string file(const std::string& name) const { return mount_ + "/" + name; }

 private:
  std::string image_, mount_, kind_;
};

TEST(RetrimHost, RefusedWhereTheHostCannotPunchHolesAndTheFileIsUnchanged) {
  TempDir dir;
  NoPunchMount host(dir);
  ASSERT_FALSE(host.kind().empty()) << "cannot mount vfat or ramfs";
  std::cout << "host file system without hole punching: " << host.kind() << "\n";
  for (const char* ext : {".vhdx", ".vhd"}) {
    std::string made = make_dynamic(dir, std::string("made") + ext, "DZDZ",
                                    std::string(ext) == ".vhd" ? disk::Format::Vhd : disk::Format::Vhdx, 2 * kMiB);
    std::string img = host.file(std::string("a") + ext);
    run_ok("cp " + q(made) + " " + q(img));
    const std::string before = sha256(img);
    Options o;
    o.mode = Mode::Retrim;
    auto r = compact::compact_image(io::Env::posix(), img, o);
    ASSERT_FALSE(r.has_value()) << ext;
    EXPECT_EQ(r.error().code(), ReturnCode::NotSupported) << r.error().what();
    EXPECT_NE(r.error().message().find("cannot"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("unchanged"), std::string::npos) << r.error().message();
    EXPECT_EQ(sha256(img), before) << ext;
    // The CLI says so before any job.
    RunResult cli = run(q(vhdkit_bin()) + " compact --mode retrim " + q(img));
    EXPECT_EQ(cli.status, 6) << cli.out << cli.err;
    EXPECT_NE(cli.out.find("returned error 32770"), std::string::npos) << cli.out;
    EXPECT_EQ(cli.out.find("In progress"), std::string::npos) << cli.out;
    EXPECT_EQ(sha256(img), before) << ext;
  }
}

}  // namespace
}  // namespace vhdkit::testing
