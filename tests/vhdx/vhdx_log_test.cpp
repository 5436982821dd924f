// SPDX-License-Identifier: Apache-2.0
// The log: entries written by our log writer (LogTransaction + commit_transaction) into a scratch file
// are copied into an image's log with the header's LogGuid set, and the image's replay must find the
// active sequence as [MS-VHDX] 2.3.3 says: the highest-numbered chain of contiguous entries that contains
// its head's tail; bad or out-of-sequence entries are not replayed; impossible entries are errors.
#include "io/testing/mem_env.h"
#include "vhdx/create.h"
#include "vhdx/format.h"
#include "vhdx_test_util.h"

namespace vhdkit::vhdx::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

class VhdxLog : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("log.vhdx");
    CreateOptions o;
    o.virtual_size = 16 * kMiB;
    o.block_size = 1 << 20;
    ASSERT_TRUE(create(io::Env::posix(), path_, o).has_value());
    auto d = open_ok(path_, io::Access::ReadWrite);
    std::vector<std::byte> z(kMiB, std::byte{'Z'});
    ASSERT_TRUE(d->write(0, z).has_value());
    ASSERT_TRUE(d->flush().has_value());
    Image& image = *image_of(*d);
    block0_ = image.block(0).file_offset;
    log_offset_ = image.header().log_offset;
    log_length_ = image.header().log_length;
    size_ = image.file_size();
    cursor_ = LogCursor{log_offset_, log_length_, Guid::random(), 0, 10};
    auto s = scratch_.open("/scratch", io::Access::ReadWrite, io::Creation::CreateNew);
    ASSERT_TRUE(s.has_value());
    scratch_file_ = std::move(*s);
    ASSERT_TRUE(scratch_file_->truncate(size_).has_value());
  }

  // Writes one entry into the scratch file's log (at the cursor).
  void entry(const LogTransaction& tx, std::optional<uint64_t> file_size = std::nullopt) {
    ASSERT_TRUE(commit_transaction(*scratch_file_, cursor_, tx, file_size.value_or(size_)).has_value());
  }
  static LogTransaction sector(uint64_t offset, char fill) {
    LogTransaction tx;
    tx.write_sector(offset, Bytes(4096, std::byte(fill)));
    return tx;
  }
  // Rewrites the entry at log offset `at` through `change` and fixes its checksum.
  void patch_entry(uint32_t at, const std::function<void(Bytes&)>& change) {
    Bytes first(4096);
    ASSERT_TRUE(scratch_file_->read_at(log_offset_ + at, first).has_value());
    Bytes e(load_le<uint32_t>(first.data() + 8));
    ASSERT_TRUE(scratch_file_->read_at(log_offset_ + at, e).has_value());
    change(e);
    store_le<uint32_t>(e.data() + 4, crc32c_with_zero_field(e, 4));
    ASSERT_TRUE(scratch_file_->write_at(log_offset_ + at, e).has_value());
  }
  // Copies the scratch log into the image and points the current header at it.
  void install() {
    Bytes log(log_length_);
    ASSERT_TRUE(scratch_file_->read_at(log_offset_, log).has_value());
    auto f = io::Env::posix().open(path_, io::Access::ReadWrite);
    ASSERT_TRUE((*f)->write_at(log_offset_, log).has_value());
    auto d = open_ok(path_);
    int current = image_of(*d)->header_section().current;
    Header h = image_of(*d)->header();
    h.log_guid = cursor_.log_guid;
    ASSERT_TRUE((*f)->write_at(kHeaderOffsets[current], serialize_header(h)).has_value());
    before_ = sha256(path_);
  }
  char first_byte_of_block0(io::Access access = io::Access::ReadOnly) {
    auto d = open_ok(path_, access);
    if (!d) return '?';
    std::vector<std::byte> b(1);
    EXPECT_TRUE(d->read(0, b).has_value());
    return static_cast<char>(b[0]);
  }
  const ReplayPlan replay() {
    auto d = open_ok(path_);
    return d ? image_of(*d)->replayed_log() : ReplayPlan{};
  }

  TempDir dir_;
  std::string path_, before_;
  uint64_t block0_ = 0, log_offset_ = 0, size_ = 0;
  uint32_t log_length_ = 0;
  LogCursor cursor_;
  io::MemEnv scratch_;
  std::unique_ptr<io::File> scratch_file_;
};

TEST_F(VhdxLog, HeadEntryWinsAndReadOnlyReplayWritesNothing) {
  entry(sector(block0_, 'A'));
  entry(sector(block0_, 'B'));
  install();
  EXPECT_EQ(first_byte_of_block0(), 'B');
  EXPECT_EQ(replay().head_sequence, 11u);
  EXPECT_EQ(sha256(path_), before_);
  EXPECT_EQ(first_byte_of_block0(io::Access::ReadWrite), 'B');  // replayed to disk
  EXPECT_NE(sha256(path_), before_);
  EXPECT_TRUE(replay().empty());  // and the log is clean afterwards
  EXPECT_EQ(first_byte_of_block0(), 'B');
  run_ok("qemu-img check " + q(path_));
}

TEST_F(VhdxLog, AnEntryWithABadChecksumIsNotReplayed) {
  entry(sector(block0_, 'A'));
  entry(sector(block0_, 'B'));
  Bytes one(1, std::byte{0x77});
  ASSERT_TRUE(scratch_file_->write_at(log_offset_ + 8192 + 100, one).has_value());  // inside entry 2
  install();
  EXPECT_EQ(first_byte_of_block0(), 'A');
  ReplayPlan p = replay();
  EXPECT_EQ(p.head_sequence, 10u);
  ASSERT_FALSE(p.ignored.empty());
  EXPECT_NE(p.ignored.front().find("checksum mismatch"), std::string::npos) << p.ignored.front();
  EXPECT_EQ(sha256(path_), before_);
}

TEST_F(VhdxLog, AChainThatNeedsItsTailReplaysFromTheTail) {
  entry(sector(block0_, 'A'));
  LogTransaction tx;
  tx.write_sector(block0_ + 4096, Bytes(4096, std::byte{'C'}));
  entry(tx);
  patch_entry(8192, [](Bytes& e) { store_le<uint32_t>(e.data() + 12, 0); });  // entry 2 needs entry 1
  install();
  ReplayPlan p = replay();
  EXPECT_EQ(p.entry_count, 2u);
  EXPECT_EQ(first_byte_of_block0(), 'A');
  EXPECT_EQ(sha256(path_), before_);
}

TEST_F(VhdxLog, AnOutOfSequenceEntryIsNotReplayed) {
  entry(sector(block0_, 'A'));
  cursor_.sequence = 12;  // a gap: 10, then 12
  entry(sector(block0_, 'B'));
  patch_entry(8192, [](Bytes& e) { store_le<uint32_t>(e.data() + 12, 0); });  // its tail is entry 1
  install();
  EXPECT_EQ(first_byte_of_block0(), 'A');
  EXPECT_EQ(replay().head_sequence, 10u);
  EXPECT_EQ(sha256(path_), before_);
}

TEST_F(VhdxLog, EntriesWrapAroundTheEndOfTheLog) {
  cursor_.head = log_length_ - 4096;  // a two-sector entry: header at the end, data sector at the start
  entry(sector(block0_, 'W'));
  EXPECT_EQ(cursor_.head, 4096u);
  install();
  EXPECT_EQ(first_byte_of_block0(), 'W');
}

TEST_F(VhdxLog, ZeroDescriptorsAndFileGrowthReplay) {
  LogTransaction tx;
  tx.zero(block0_, kMiB);
  tx.set_file_size(size_ + 3 * kMiB);
  entry(tx);
  install();
  {
    auto d = open_ok(path_);
    EXPECT_EQ(image_of(*d)->file_size(), size_ + 3 * kMiB);
  }
  EXPECT_EQ(first_byte_of_block0(), '\0');
  EXPECT_EQ(sha256(path_), before_);
  EXPECT_EQ(first_byte_of_block0(io::Access::ReadWrite), '\0');
  EXPECT_EQ(std::filesystem::file_size(path_), size_ + 3 * kMiB);
}

TEST_F(VhdxLog, AnEntryThatWritesIntoTheHeaderSectionIsAnError) {
  entry(sector(64 * 1024, 'H'));
  install();
  auto r = open_result(path_);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("inside the header section"), std::string::npos) << r.error().what();
  EXPECT_FALSE(open_result(path_, io::Access::ReadWrite).has_value());
  EXPECT_EQ(sha256(path_), before_);
}

TEST_F(VhdxLog, ATruncatedFileIsAnError) {
  ASSERT_TRUE(scratch_file_->truncate(size_ + 8 * kMiB).has_value());  // FlushedFileOffset beyond the image
  entry(sector(block0_, 'T'), size_ + 8 * kMiB);
  install();
  auto r = open_result(path_);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("truncated"), std::string::npos) << r.error().what();
  EXPECT_EQ(sha256(path_), before_);
}

TEST_F(VhdxLog, LargeTransactionsSplitIntoEntriesThatFitTheLog) {
  // 300 sectors do not fit one 1 MiB log entry (at most 254 data sectors): two entries, all applied.
  LogTransaction tx;
  for (uint64_t i = 0; i < 300; ++i) tx.write_sector(block0_ + i * 4096, Bytes(4096, std::byte{'L'}));
  uint64_t seq = cursor_.sequence;
  entry(tx);
  EXPECT_EQ(cursor_.sequence, seq + 2);
  Bytes back(300 * 4096);
  ASSERT_TRUE(scratch_file_->read_at(block0_, back).has_value());
  EXPECT_TRUE(std::all_of(back.begin(), back.end(), [](std::byte b) { return b == std::byte{'L'}; }));
  EXPECT_LE(max_data_sectors_per_entry(1 << 20), 255u);
}

// The shrink sequence compaction uses: release the last block and log the smaller size, truncate, and
// lose power before the log is closed. The image must reopen (the shorter file is not "truncated").
// commit() closes the log once the transaction is applied: a shrink cut off after it (before the caller's
// close_log) leaves nothing to replay, and the shorter file reads as it should.
TEST_F(VhdxLog, ALoggedShrinkCutOffBeforeCloseLogLeavesNoLogToReplay) {
  uint64_t last_block = 0;
  {
    auto d = open_ok(path_, io::Access::ReadWrite);
    std::vector<std::byte> y(kMiB, std::byte{'Y'});
    ASSERT_TRUE(d->write(15 * kMiB, y).has_value());
    ASSERT_TRUE(d->flush().has_value());
    last_block = image_of(*d)->block(15).file_offset;
  }
  ASSERT_EQ(last_block + kMiB, std::filesystem::file_size(path_));
  {
    auto d = open_ok(path_, io::Access::ReadWrite);
    Image& image = *image_of(*d);
    LogTransaction tx;
    image.add_bat_changes(tx, std::vector<std::pair<uint64_t, uint64_t>>{{image.geometry().payload_index(15), 0}});
    tx.set_file_size(last_block);
    ASSERT_TRUE(image.commit(tx).has_value());
    ASSERT_TRUE(image.file().truncate(last_block).has_value());
    ASSERT_TRUE(image.file().flush().has_value());
    // no close_log(): the power goes here
  }
  auto d = open_ok(path_);
  ASSERT_TRUE(d);
  EXPECT_TRUE(image_of(*d)->header().log_guid.is_zero());
  EXPECT_TRUE(image_of(*d)->replayed_log().empty());
  std::vector<std::byte> b(kMiB);
  ASSERT_TRUE(d->read(15 * kMiB, b).has_value());
  EXPECT_TRUE(all_zero(b));
  EXPECT_EQ(first_byte_of_block0(), 'Z');
  d.reset();
  EXPECT_EQ(first_byte_of_block0(io::Access::ReadWrite), 'Z');
  EXPECT_EQ(std::filesystem::file_size(path_), last_block);
  run_ok("qemu-img check " + q(path_));
}

}  // namespace
}  // namespace vhdkit::vhdx::testing
