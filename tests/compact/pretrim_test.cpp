// SPDX-License-Identifier: Apache-2.0
// Pretrimmed (Mode 3) and the hole knowledge of every zero scan, with the bytes read counted through the io
// layer: VHDX blocks in UNMAPPED (3 and the older 5) and UNDEFINED states that still name file space, and
// dynamic VHD and VHDX copied with holes (cp --sparse=always), are released without reading them, and the
// content stays (qemu-img compare, check). Fixed disks are refused in every mode but Retrim, naming it; and
// --unsparse gives a holed image its storage back.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>

#include "compact/compact.h"
#include "compact/unsparse.h"
#include "compact_checks.h"
#include "io/forwarding_env.h"

namespace vhdkit::testing {
namespace {

using compact::Mode;
using compact::Options;
using compact::Report;

// A File that counts the bytes read through it and passes everything on.
class CountingFile final : public io::File {
 public:
  CountingFile(std::unique_ptr<io::File> inner, std::atomic<uint64_t>& read)
      : File(inner->path()), inner_(std::move(inner)), read_(read) {}

 protected:
  Result<size_t> do_read(uint64_t offset, std::span<std::byte> buf) override {
    VHDKIT_ASSIGN(size_t n, inner_->read_up_to(offset, buf));
    read_ += n;
    return n;
  }
  Result<size_t> do_write(uint64_t offset, std::span<const std::byte> buf) override {
    VHDKIT_TRY(inner_->write_at(offset, buf));
    return buf.size();
  }
  Status do_flush() override { return inner_->flush(); }
  Status do_truncate(uint64_t size) override { return inner_->truncate(size); }
  Result<uint64_t> do_size() override { return inner_->size(); }
  Status do_punch_hole(uint64_t offset, uint64_t length) override { return inner_->punch_hole(offset, length); }
  Status do_copy_range(uint64_t from, uint64_t to, uint64_t length) override {
    return inner_->copy_range(from, to, length);
  }
  Result<uint64_t> do_allocated_bytes() override { return inner_->allocated_bytes(); }
  Result<std::vector<io::ByteRun>> do_data_ranges(uint64_t offset, uint64_t length) override {
    return inner_->data_ranges(offset, length);
  }
  Result<uint64_t> do_host_block_size() override { return inner_->host_block_size(); }
  Status do_allocate(uint64_t offset, uint64_t length) override { return inner_->allocate(offset, length); }
  Result<io::FileIdentity> do_identity() override { return inner_->identity(); }
  Status do_try_lock(io::LockMode mode) override { return inner_->try_lock(mode); }
  Status do_unlock() override { return inner_->unlock(); }

 private:
  std::unique_ptr<io::File> inner_;
  std::atomic<uint64_t>& read_;
};

class CountingEnv final : public io::ForwardingEnv {
 public:
  CountingEnv() : ForwardingEnv(io::Env::posix()) {}
  Result<std::unique_ptr<io::File>> open(const std::string& path, io::Access access, io::Creation creation) override {
    VHDKIT_ASSIGN(auto f, inner_.open(path, access, creation));
    return std::unique_ptr<io::File>(std::make_unique<CountingFile>(std::move(f), read_));
  }
  uint64_t bytes_read() const { return read_.load(); }

 private:
  std::atomic<uint64_t> read_{0};
};

Report run_counted(const std::string& img, Mode mode, uint64_t& bytes_read) {
  CountingEnv env;
  Options o;
  o.mode = mode;
  auto r = compact::compact_image(env, img, o);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().what());
  bytes_read = env.bytes_read();
  return r ? *r : Report{};
}

uint64_t allocated(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

// A sparse copy: every all-zero 4 KiB of the file becomes a hole (as cp --sparse=always leaves it).
std::string holed_copy(const TempDir& dir, const std::string& img, const std::string& name) {
  std::string out = dir.file(name);
  run_ok("cp --sparse=always " + q(img) + " " + q(out));
  return out;
}

// Hyper-V leaves trimmed blocks UNMAPPED with their file space still named; older writers used 5, and
// UNDEFINED may name space too. Pretrimmed gives the space back reading none of those blocks.
TEST(Pretrimmed, VhdxUnmappedBlocksWithSpaceAreReleasedUnread) {
  TempDir dir;
  std::string img = make_dynamic_vhdx(dir, "a.vhdx", "DZZDZDZ", 2 * kMiB);
  mark_without_data_keeping_space(img, {1, 2}, vhdx::PayloadState::Unmapped);
  mark_without_data_keeping_space(img, {4}, vhdx::PayloadState::UnmappedV095);
  mark_without_data_keeping_space(img, {6}, vhdx::PayloadState::Undefined);
  RunResult check = run("qemu-img check -f vhdx " + q(img));
  ASSERT_EQ(check.status, 0) << check.out << check.err;
  std::string orig = keep_copy(img);
  uint64_t read = 0;
  Report r = run_counted(img, Mode::Pretrimmed, read);
  EXPECT_EQ(r.blocks_released, 4u);
  EXPECT_LT(file_size(img), file_size(orig));
  // The metadata (headers, region table, metadata region, BAT) and the moved data blocks (copied by the
  // kernel), none of the four blocks: less than one block of bytes.
  EXPECT_LT(read, 2 * kMiB) << read << " bytes read";
  std::cout << "pretrimmed VHDX: " << r.blocks_released << " blocks released, " << read << " bytes read\n";
  EXPECT_NE(r.mode_note.find("Pretrimmed"), std::string::npos) << r.mode_note;
  expect_same_content(orig, img);
  expect_tools_accept(img);
}

class HostHoles : public ::testing::TestWithParam<disk::Format> {};

// A dynamic image whose zero blocks are holes in the host file (cp --sparse=always): Pretrimmed releases
// them without reading a byte of them; the data blocks stay.
TEST_P(HostHoles, PretrimmedReleasesHoleBlocksUnread) {
  TempDir dir;
  const bool vhd = GetParam() == disk::Format::Vhd;
  std::string made = make_dynamic(dir, vhd ? "m.vhd" : "m.vhdx", "DZDZZD", GetParam(), 2 * kMiB);
  std::string img = holed_copy(dir, made, vhd ? "a.vhd" : "a.vhdx");
  std::string orig = keep_copy(made);
  uint64_t read = 0;
  Report r = run_counted(img, Mode::Pretrimmed, read);
  EXPECT_EQ(r.blocks_released, 3u);
  EXPECT_LT(read, 2 * kMiB) << read << " bytes read";
  std::cout << (vhd ? "VHD" : "VHDX") << " with holes, Pretrimmed: " << r.blocks_released << " released, " << read
            << " bytes read\n";
  expect_same_content(orig, img);
  expect_tools_accept(img);
  auto problems = our_check(io::Env::posix(), img);
  EXPECT_TRUE(problems.empty()) << problems.front();
}

// The zero scan (Prezeroed) on the same file reads no hole: the data blocks show data in their first piece
// and the hole blocks are zeros without a read.
TEST_P(HostHoles, PrezeroedReadsNoHole) {
  TempDir dir;
  const bool vhd = GetParam() == disk::Format::Vhd;
  std::string made = make_dynamic(dir, vhd ? "m.vhd" : "m.vhdx", "DZDZZD", GetParam(), 2 * kMiB);
  std::string img = holed_copy(dir, made, vhd ? "a.vhd" : "a.vhdx");
  uint64_t read = 0;
  Report r = run_counted(img, Mode::Prezeroed, read);
  EXPECT_EQ(r.blocks_released, 3u);
  EXPECT_LT(read, 2 * kMiB) << read << " bytes read";
  expect_same_content(made, img);
}

// A fixed disk keeps its size by definition: every mode but Retrim refuses it before anything is written,
// naming Retrim; so does a raw image.
TEST(FixedDisks, RefusedInEveryModeButRetrimNamingRetrim) {
  TempDir dir;
  std::string raw = dir.file("disk.raw");
  make_raw_pattern(raw, "DZDZ");
  std::string vhd = dir.file("fixed.vhd"), vhdx = dir.file("fixed.vhdx");
  run_ok("qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on " + q(raw) + " " + q(vhd));
  run_ok("qemu-img convert -f raw -O vhdx -o subformat=fixed " + q(raw) + " " + q(vhdx));
  for (const std::string& img : {vhd, vhdx, raw}) {
    const std::string before = sha256(img);
    for (Mode m : {Mode::Full, Mode::Quick, Mode::Prezeroed, Mode::Pretrimmed}) {
      for (compact::Action a : {compact::Action::Compact, compact::Action::DryRun}) {
        Options o;
        o.mode = m;
        o.action = a;
        auto r = compact::compact_image(io::Env::posix(), img, o);
        ASSERT_FALSE(r.has_value()) << img << " " << to_string(m);
        EXPECT_EQ(r.error().code(), ReturnCode::NotSupported) << r.error().what();
        EXPECT_NE(r.error().message().find("Retrim"), std::string::npos) << r.error().message();
      }
    }
    EXPECT_EQ(sha256(img), before) << img;
  }
}

// Retrim on a dynamic image without a file system punches its zero runs; --unsparse brings every byte's
// storage back; the content never changes.
TEST_P(HostHoles, RetrimPunchesZeroRunsAndUnsparseFillsThemBack) {
  TempDir dir;
  const bool vhd = GetParam() == disk::Format::Vhd;
  std::string img = make_dynamic(dir, vhd ? "a.vhd" : "a.vhdx", "DZPHZD", GetParam(), 2 * kMiB);
  std::string orig = keep_copy(img);
  const uint64_t size = file_size(img), before = allocated(img);
  Options o;
  o.mode = Mode::Retrim;
  Options dry = o;
  dry.action = compact::Action::DryRun;
  Report predicted = compact_ok(img, dry);
  EXPECT_EQ(sha256(img), sha256(orig)) << "the dry run wrote";
  Report r = compact_ok(img, o);
  EXPECT_EQ(r.bytes_punched, predicted.bytes_punched);
  EXPECT_EQ(file_size(img), size);
  const uint64_t after = allocated(img);
  // Two zero blocks, the zero half of 'H', all of 'P' but the 4 KiB around its one data sector, less a host
  // block at each edge of each block (a VHD's data starts 512 bytes past a 4 KiB boundary).
  EXPECT_GE(before - after, 2 * 2 * kMiB + kMiB + 2 * kMiB - 8192 - 4 * 8192) << before << " -> " << after;
  EXPECT_EQ(r.allocated_bytes_after, after);
  EXPECT_NE(r.mode_note.find("only zero runs"), std::string::npos) << r.mode_note;
  EXPECT_NE(r.mode_note.find("must not be sparse"), std::string::npos) << r.mode_note;
  expect_same_content(orig, img);
  expect_tools_accept(img);
  std::cout << (vhd ? "VHD" : "VHDX") << " Retrim without a file system: " << before << " -> " << after
            << " bytes allocated\n";

  auto u = compact::unsparse_image(io::Env::posix(), img);
  ASSERT_TRUE(u.has_value()) << u.error().what();
  EXPECT_GE(allocated(img), size);
  EXPECT_EQ(u->allocated_bytes_after, allocated(img));
  EXPECT_GT(u->holes, 0u);
  EXPECT_EQ(file_size(img), size);
  expect_same_content(orig, img);
  // Again through the CLI: nothing to fill that changes a byte or the size.
  RunResult cli = run(q(vhdkit_bin()) + " compact --unsparse " + q(img));
  EXPECT_EQ(cli.status, 0) << cli.out << cli.err;
  EXPECT_NE(cli.out.find("filled"), std::string::npos) << cli.out;
  EXPECT_GE(allocated(img), size);
  EXPECT_EQ(file_size(img), size);
  expect_same_content(orig, img);
}

INSTANTIATE_TEST_SUITE_P(Formats, HostHoles, ::testing::Values(disk::Format::Vhd, disk::Format::Vhdx),
                         [](const auto& test) {
                           return std::string(test.param == disk::Format::Vhd ? "Vhd" : "Vhdx");
                         });

}  // namespace
}  // namespace vhdkit::testing
