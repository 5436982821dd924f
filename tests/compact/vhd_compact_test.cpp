// VHD compaction on real files made by qemu-img and by Disk2VHD, with qemu-img and vhdiinfo as referees.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>


#include <filesystem>

#include "compact/compact.h"
#include "compact/open_compactable.h"
#include "background_process.h"
#include "images.h"

namespace vhdkit::testing {
namespace {

using compact::Action;
using compact::Mode;
using compact::Options;
using compact::Outcome;
using compact::Report;

Report compact_ok(const std::string& path, Options options = {}) {
  auto r = compact::compact_image(io::Env::posix(), path, options);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().what());
  return r ? *r : Report{};
}

Report dry_run(const std::string& path) {
  Options o;
  o.action = Action::DryRun;
  return compact_ok(path, o);
}

// Our own structural check: the image opens for compaction (footer, header, BAT, no overlaps) and a dry run
// finds nothing more to do.
void expect_fully_compacted(const std::string& path) {
  Report again = dry_run(path);
  EXPECT_EQ(again.blocks_released, 0u);
  EXPECT_EQ(again.blocks_moved, 0u);
  EXPECT_EQ(again.file_size_after, again.file_size_before);
}

// Compacts in place and holds the result to everything the issue asks: content, tools, and the dry run's
// prediction.
Report compact_and_referee(const std::string& image) {
  std::string orig = keep_copy(image);
  Report predicted = dry_run(image);
  EXPECT_EQ(sha256(image), sha256(orig)) << "a dry run wrote to the image";
  Report done = compact_ok(image);
  EXPECT_EQ(done.outcome, Outcome::Completed);
  EXPECT_EQ(done.blocks_released, predicted.blocks_released);
  EXPECT_EQ(done.blocks_moved, predicted.blocks_moved);
  EXPECT_EQ(done.file_size_after, predicted.file_size_after);
  EXPECT_EQ(file_size(image), predicted.file_size_after);
  EXPECT_EQ(file_size(orig) - file_size(image), predicted.bytes_released);
  expect_same_content(orig, image);
  expect_tools_accept(image);
  auto problems = our_check(io::Env::posix(), image);
  EXPECT_TRUE(problems.empty()) << problems.front();
  expect_fully_compacted(image);
  return done;
}

TEST(VhdCompact, InterleavedZeroAndDataBlocks) {
  TempDir dir;
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZDZZDPZDZ");
  Report r = compact_and_referee(img);
  EXPECT_EQ(r.blocks_allocated_before, 10u);
  EXPECT_EQ(r.blocks_released, 5u);  // the 'P' block is zero in only some sectors: it stays
  EXPECT_GT(r.blocks_moved, 0u);
  EXPECT_EQ(r.bytes_released, 5 * (2 * kMiB + 512));
}

TEST(VhdCompact, LastBlockMustMove) {
  TempDir dir;
  std::string img = make_dynamic_vhd(dir, "a.vhd", "ZZDDZD");
  Report r = compact_and_referee(img);
  EXPECT_EQ(r.blocks_released, 3u);
  EXPECT_EQ(r.blocks_moved, 2u);  // blocks 5 and 3 fill the holes of blocks 0 and 1
}

TEST(VhdCompact, BlocksAllocatedOutOfOrder) {
  TempDir dir;
  std::string img = make_shuffled_vhd(dir, "a.vhd", "DZZDZDDZ", {7, 3, 0, 5, 1, 6, 2, 4});
  Report r = compact_and_referee(img);
  EXPECT_EQ(r.blocks_released, 4u);
}

TEST(VhdCompact, NothingToReleaseLeavesTheFileAlone) {
  TempDir dir;
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DDPD");
  std::string before = sha256(img);
  Report r = compact_ok(img);
  EXPECT_EQ(r.blocks_released, 0u);
  EXPECT_EQ(r.bytes_released, 0u);
  EXPECT_EQ(sha256(img), before);
}

TEST(VhdCompact, Disk2VhdZeroFilledFixture) {
  TempDir dir;
  std::string img = expand_fixture("qemu-iotests/d2v-zerofilled.vhd.bz2", dir);
  Report r = compact_and_referee(img);
  EXPECT_EQ(r.blocks_allocated_before, 126u);
  EXPECT_EQ(r.blocks_released, 126u);
  EXPECT_EQ(r.blocks_moved, 0u);
  EXPECT_LT(file_size(img), 1u << 20);
}

// qemu's vpc driver ignores parents, so our reader (through the parent chain) judges the child's content.
TEST(VhdCompact, DifferencingChildKeepsItsVirtualContent) {
  TempDir dir;
  DifferencingPair pair = make_differencing_pair(dir);
  io::Env& env = io::Env::posix();
  const auto before = virtual_content(env, pair.child);
  const std::string parent_sha = sha256(pair.parent);
  const uint64_t size_before = file_size(pair.child);
  Report predicted = dry_run(pair.child);
  Report done = compact_ok(pair.child);
  EXPECT_EQ(done.blocks_allocated_before, 7u);
  EXPECT_EQ(done.blocks_released, pair.releasable);
  EXPECT_EQ(done.blocks_released, predicted.blocks_released);
  EXPECT_EQ(done.blocks_moved, predicted.blocks_moved);
  EXPECT_EQ(file_size(pair.child), predicted.file_size_after);
  EXPECT_EQ(size_before - file_size(pair.child), pair.releasable * (2 * kMiB + 512));
  EXPECT_NE(done.mode_note.find("differencing"), std::string::npos) << done.mode_note;
  EXPECT_TRUE(virtual_content(env, pair.child) == before) << "the child reads differently";
  EXPECT_EQ(sha256(pair.parent), parent_sha);
  auto problems = our_check(env, pair.child);
  EXPECT_TRUE(problems.empty()) << problems.front();
  run_ok("vhdiinfo " + q(pair.child));
  expect_fully_compacted(pair.child);
}

TEST(VhdCompact, FullAndQuickRunAsPrezeroedAndSaySo) {
  TempDir dir;
  for (Mode m : {Mode::Full, Mode::Quick, Mode::Prezeroed}) {
    std::string img = make_dynamic_vhd(dir, "m.vhd", "DZ");
    Options o;
    o.mode = m;
    Report r = compact_ok(img, o);
    EXPECT_EQ(r.blocks_released, 1u);
    EXPECT_EQ(r.mode, m);
    if (m != Mode::Prezeroed) {
      EXPECT_NE(r.mode_note.find("ran as Prezeroed"), std::string::npos) << r.mode_note;
    }
    std::filesystem::remove(img);
  }
}

TEST(VhdCompact, RetrimAndPretrimmedAreNotSupportedYet) {
  TempDir dir;
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZ");
  std::string before = sha256(img);
  for (Mode m : {Mode::Retrim, Mode::Pretrimmed}) {
    Options o;
    o.mode = m;
    auto r = compact::compact_image(io::Env::posix(), img, o);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ReturnCode::NotSupported);
    EXPECT_NE(r.error().message().find("not implemented yet"), std::string::npos);
  }
  EXPECT_EQ(sha256(img), before);
}

TEST(VhdCompact, FixedVhdIsNotSupportedAndSaysWhy) {
  TempDir dir;
  std::string img = dir.file("fixed.vhd");
  run_ok("qemu-img create -q -f vpc -o subformat=fixed " + q(img) + " 8M");
  std::string before = sha256(img);
  auto r = compact::compact_image(io::Env::posix(), img, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ReturnCode::NotSupported);
  EXPECT_NE(r.error().message().find("fixed VHD"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("Retrim"), std::string::npos) << r.error().message();
  EXPECT_EQ(sha256(img), before);
}

TEST(VhdCompact, RawImageIsNotSupported) {
  TempDir dir;
  std::string img = dir.file("disk.raw");
  make_raw_pattern(img, "DZ");
  auto r = compact::compact_image(io::Env::posix(), img, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ReturnCode::NotSupported);
}

TEST(VhdCompact, MissingFileIsFileNotFound) {
  TempDir dir;
  auto r = compact::compact_image(io::Env::posix(), dir.file("nope.vhd"), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ReturnCode::FileNotFound);
}

// Makes a file or folder unwritable even for root (tests run as root in CI): the immutable attribute.
class Unwritable {
 public:
  explicit Unwritable(std::string path) : path_(std::move(path)) {
    if (::geteuid() == 0) run_ok("chattr +i " + q(path_));
    else ::chmod(path_.c_str(), 0555);
  }
  ~Unwritable() {
    if (::geteuid() == 0) run_ok("chattr -i " + q(path_));
    else ::chmod(path_.c_str(), 0755);
  }

 private:
  std::string path_;
};

TEST(VhdCompact, ReadOnlyFileOrFolderIsAccessDeniedAndUntouched) {
  TempDir dir;
  std::string sub = dir.file("ro");
  std::filesystem::create_directory(sub);
  std::string img = make_dynamic_vhd(dir, "ro/a.vhd", "DZ");
  std::string before = sha256(img);
  for (const std::string& target : {img, sub}) {
    Unwritable lock(target);
    auto r = compact::compact_image(io::Env::posix(), img, {});
    ASSERT_FALSE(r.has_value()) << target;
    EXPECT_EQ(r.error().code(), ReturnCode::AccessDenied) << r.error().what();
    EXPECT_EQ(sha256(img), before);
  }
  EXPECT_EQ(compact_ok(img).blocks_released, 1u);  // and once writable again, it works
}

TEST(VhdCompact, DryRunWritesNothingAndPredictsExactly) {
  TempDir dir;
  std::string img = make_dynamic_vhd(dir, "a.vhd", "ZDZDDZZD");
  std::string before = sha256(img);
  Report predicted = dry_run(img);
  EXPECT_TRUE(predicted.dry_run);
  EXPECT_EQ(sha256(img), before);
  EXPECT_EQ(predicted.blocks_released, 4u);
  Report done = compact_ok(img);
  EXPECT_EQ(done.file_size_after, predicted.file_size_after);
  EXPECT_EQ(done.blocks_moved, predicted.blocks_moved);
  EXPECT_EQ(file_size(img), predicted.file_size_after);
}

TEST(VhdCompact, OutputWritesACompactedCopyAndLeavesTheSource) {
  TempDir dir;
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZZDZD");
  std::string before = sha256(img);
  Options o;
  o.output_path = dir.file("out.vhd");
  Report r = compact_ok(img, o);
  EXPECT_EQ(sha256(img), before);
  EXPECT_EQ(r.path, *o.output_path);
  EXPECT_EQ(r.blocks_released, 3u);
  EXPECT_EQ(file_size(*o.output_path), r.file_size_after);
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().string().find("vhdkit-tmp"), std::string::npos) << "left behind: " << e.path();
  }
  expect_same_content(img, *o.output_path);
  expect_tools_accept(*o.output_path);
}

// qemu-io with the image open, reading commands from a pipe: it holds qemu's locks until its input closes.
// Whether it holds them yet is read from /proc/locks: probing with another qemu would take a shared lock
// that makes qemu-io's own open fail when the two race.
class QemuIoHolder {
 public:
  explicit QemuIoHolder(const std::string& image)
      : process_(std::make_unique<BackgroundProcess>(std::vector<std::string>{"qemu-io", "-f", "vpc", image})) {
    EXPECT_TRUE(wait_until([&] { return file_is_locked(image); })) << "qemu-io never took its lock on " << image;
  }
  void release() { process_.reset(); }  // end of input: qemu-io quits, and the process is waited for

 private:
  std::unique_ptr<BackgroundProcess> process_;
};

TEST(VhdCompact, RefusedWhileQemuHoldsTheImageWorksAfterItExits) {
  TempDir dir;
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZDZ");
  std::string before = sha256(img);
  QemuIoHolder qemu(img);
  auto r = compact::compact_image(io::Env::posix(), img, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ReturnCode::InUse);
  EXPECT_NE(r.error().message().find("in use"), std::string::npos) << r.error().what();
  EXPECT_EQ(sha256(img), before);
  qemu.release();
  EXPECT_EQ(compact_ok(img).blocks_released, 2u);
}

TEST(VhdCompact, SecondCompactionOfTheSameImageIsRefusedWhileTheFirstHoldsIt) {
  TempDir dir;
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZ");
  auto holder = io::Env::posix().open(img, io::Access::ReadWrite);
  ASSERT_TRUE(holder.has_value());
  ASSERT_TRUE((*holder)->try_lock(io::LockMode::Exclusive));
  std::string before = sha256(img);
  auto r = compact::compact_image(io::Env::posix(), img, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ReturnCode::InUse);
  EXPECT_EQ(sha256(img), before);
}

class Recorder final : public compact::Observer {
 public:
  explicit Recorder(int stop_after = -1) : stop_after_(stop_after) {}
  void progress(uint64_t done, uint64_t total) override {
    EXPECT_LE(done, total);
    if (!seen.empty()) {
      EXPECT_EQ(total, seen.back().second);
      EXPECT_GE(done, seen.back().first);
    }
    seen.push_back({done, total});
  }
  bool stop_requested() override { return stop_after_ >= 0 && asked_++ >= stop_after_; }
  std::vector<std::pair<uint64_t, uint64_t>> seen;

 private:
  int stop_after_;
  int asked_ = 0;
};

TEST(VhdCompact, ProgressMovesSteadilyToTheEnd) {
  TempDir dir;
  std::string img = make_dynamic_vhd(dir, "a.vhd", "DZDZDZDZDZDZDZDZ");
  Recorder rec;
  auto r = compact::compact_image(io::Env::posix(), img, {}, &rec);
  ASSERT_TRUE(r.has_value()) << r.error().what();
  ASSERT_GE(rec.seen.size(), 16u);  // at least one report per scanned block
  EXPECT_EQ(rec.seen.back().first, rec.seen.back().second);
}

TEST(VhdCompact, CancellationAtEverySafePointLeavesAValidImageAndARerunFinishes) {
  TempDir dir;
  std::string img = make_dynamic_vhd(dir, "a.vhd", "ZDZDZZDDZDZD");
  std::string orig = keep_copy(img);
  Report full = dry_run(img);
  int cancelled_runs = 0;
  for (int stop_after = 0;; ++stop_after) {
    std::string work = dir.file("work.vhd");
    run_ok("cp --sparse=always " + q(orig) + " " + q(work));
    Recorder rec(stop_after);
    auto r = compact::compact_image(io::Env::posix(), work, {}, &rec);
    ASSERT_TRUE(r.has_value()) << r.error().what();
    expect_same_content(orig, work);
    expect_tools_accept(work);
    if (r->outcome == Outcome::Completed) break;
    ++cancelled_runs;
    Report rest = compact_ok(work);
    EXPECT_EQ(rest.outcome, Outcome::Completed);
    EXPECT_EQ(file_size(work), full.file_size_after) << "stopped after " << stop_after;
    expect_same_content(orig, work);
    expect_fully_compacted(work);
  }
  EXPECT_GE(cancelled_runs, 12);  // every block of the scan plus the release, move and shrink points
}

}  // namespace
}  // namespace vhdkit::testing
