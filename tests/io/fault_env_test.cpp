// SPDX-License-Identifier: Apache-2.0
// FaultFile/FaultEnv: counting, failing each call in turn, transient and persistent faults, short
// transfers, and the sticky-error rule of File (a failed mutation refuses later writes, reads go on).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>

#include "io/testing/fault_env.h"
#include "io/testing/mem_env.h"
#include "test_support.h"

namespace vhdkit::io {
namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

const std::string kPath = "/mem/disk.img";

// A little workload touching every kind of call once, stopping at the first error (as real code does).
Status workload(Env& env) {
  VHDKIT_ASSIGN(auto f, env.open(kPath, Access::ReadWrite));
  std::vector<std::byte> buf(8);
  VHDKIT_TRY(f->read_at(0, buf));                       // read
  VHDKIT_TRY(f->write_at(8192, bytes_of("new data")));  // write
  VHDKIT_TRY(f->flush());                               // flush
  VHDKIT_TRY(f->copy_range(0, 16384, 4096));            // copy
  VHDKIT_TRY(f->punch_hole(4096, 4096));                // punch
  VHDKIT_TRY(f->truncate(20000));                       // truncate
  VHDKIT_TRY(f->flush());                               // flush
  VHDKIT_TRY(env.rename(kPath, kPath + ".new"));        // rename
  return env.sync_dir("/mem");                          // sync dir
}

void seed(MemEnv& mem) { mem.set_bytes(kPath, std::vector<std::byte>(12288, std::byte{0x5a})); }

TEST(FaultEnv, CountsEveryCallOfTheWorkloadInOrder) {
  MemEnv mem;
  seed(mem);
  FaultEnv env(mem);
  ASSERT_TRUE(workload(env));
  EXPECT_EQ(env.state().calls(), 9u);
  EXPECT_EQ(env.state().calls(Op::Flush), 2u);
  EXPECT_EQ(env.state().failures(), 0u);
  std::vector<Op> ops;
  for (const auto& c : env.state().log()) ops.push_back(c.op);
  EXPECT_EQ(ops, (std::vector<Op>{Op::Read, Op::Write, Op::Flush, Op::Copy, Op::Punch, Op::Truncate, Op::Flush,
                                  Op::Rename, Op::SyncDir}));
  EXPECT_EQ(env.state().log()[1].path, kPath);
}

TEST(FaultEnv, FailsEachCallInTurnAndTheWorkloadStopsThere) {
  MemEnv counting_mem;
  seed(counting_mem);
  FaultEnv counting(counting_mem);
  ASSERT_TRUE(workload(counting));
  const auto log = counting.state().log();
  for (uint64_t n = 1; n <= log.size(); ++n) {
    SCOPED_TRACE(fmt::format("failing call {} ({})", n, to_string(log[n - 1].op)));
    MemEnv mem;
    seed(mem);
    FaultEnv env(mem, {.fail_at = n, .fault = n % 2 ? Fault::Eio : Fault::NoSpace});
    auto s = workload(env);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code(), ReturnCode::Failed);
    EXPECT_NE(s.error().message().find(fmt::format("{} failed: {}", to_string(log[n - 1].op),
                                                   n % 2 ? "Input/output error" : "No space left on device")),
              std::string::npos)
        << s.error().what();
    EXPECT_EQ(env.state().calls(), n) << "the workload went on after the failure";
    EXPECT_EQ(env.state().failures(), 1u);
  }
}

TEST(FaultEnv, TransientFailsOneCallPersistentEveryLaterOne) {
  MemEnv mem;
  seed(mem);
  std::vector<std::byte> buf(16);
  {
    FaultEnv env(mem, {.counted = {Op::Read}, .fail_at = 2});
    auto f = *env.open(kPath, Access::ReadOnly);
    EXPECT_TRUE(f->read_at(0, buf));
    EXPECT_FALSE(f->read_at(0, buf));
    EXPECT_TRUE(f->read_at(0, buf)) << "a transient fault fails that call only";
    EXPECT_FALSE(f->sticky_error()) << "a failed read changes nothing on disk: no sticky error";
  }
  {
    FaultEnv env(mem, {.counted = {Op::Read}, .fail_at = 2, .persistence = Persistence::Persistent});
    auto f = *env.open(kPath, Access::ReadOnly);
    EXPECT_TRUE(f->read_at(0, buf));
    EXPECT_FALSE(f->read_at(0, buf));
    EXPECT_FALSE(f->read_at(0, buf));
    EXPECT_FALSE(f->read_at(100, buf));
    EXPECT_EQ(env.state().failures(), 3u);
    env.state().set_plan({});
    EXPECT_TRUE(f->read_at(0, buf)) << "a new plan ends the failure";
  }
}

TEST(FaultEnv, OnlyCountedKindsCountAndFail) {
  MemEnv mem;
  seed(mem);
  FaultEnv env(mem, {.counted = {Op::Flush}, .fail_at = 2});
  auto s = workload(env);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("flush failed"), std::string::npos) << s.error().what();
  EXPECT_EQ(env.state().calls(), 2u);
}

// File's rule 2: after a failed write/flush/truncate/punch/copy every later mutation fails with the first
// error; reads keep working.
TEST(FaultEnv, AFailedMutationPoisonsLaterWritesButNotReads) {
  for (Op op : {Op::Write, Op::Flush, Op::Truncate, Op::Punch, Op::Copy}) {
    SCOPED_TRACE(std::string(to_string(op)));
    MemEnv mem;
    seed(mem);
    FaultEnv env(mem, {.counted = {op}, .fail_at = 1});
    auto f = *env.open(kPath, Access::ReadWrite);
    Status first = op == Op::Write      ? f->write_at(0, bytes_of("x"))
                   : op == Op::Flush    ? f->flush()
                   : op == Op::Truncate ? f->truncate(4096)
                   : op == Op::Punch    ? f->punch_hole(0, 4096)
                                        : f->copy_range(0, 4096, 10);
    ASSERT_FALSE(first);
    ASSERT_TRUE(f->sticky_error());
    EXPECT_EQ(f->sticky_error()->message(), first.error().message());
    for (Status later : {f->write_at(0, bytes_of("y")), f->flush(), f->truncate(100), f->punch_hole(0, 10),
                         f->copy_range(0, 5000, 10)}) {
      ASSERT_FALSE(later);
      EXPECT_NE(later.error().message().find("refusing to write after an earlier failure"), std::string::npos);
      EXPECT_NE(later.error().message().find(first.error().message()), std::string::npos) << later.error().what();
    }
    EXPECT_EQ(env.state().calls(), 1u) << "a poisoned file must not even try";
    std::vector<std::byte> buf(100);
    EXPECT_TRUE(f->read_at(0, buf)) << "reads go on after a sticky error";
    EXPECT_EQ(*f->size(), 12288u);
    auto reopened = env.open(kPath, Access::ReadWrite);
    ASSERT_TRUE(reopened);
    EXPECT_TRUE((*reopened)->write_at(0, bytes_of("z"))) << "reopening clears the sticky error";
  }
}

TEST(FaultEnv, AFailedWriteMayLeaveItsFirstHalfBehind) {
  MemEnv mem;
  mem.set_bytes(kPath, bytes_of("........"));
  FaultEnv env(mem, {.counted = {Op::Write}, .fail_at = 1, .failed_write = FailedWrite::WritesPrefix});
  auto f = *env.open(kPath, Access::ReadWrite);
  EXPECT_FALSE(f->write_at(0, bytes_of("ABCDEFGH")));
  EXPECT_EQ(*mem.bytes(kPath), bytes_of("ABCD...."));
}

TEST(FaultEnv, ShortTransfersAreCountedAndCompletedByTheLoop) {
  MemEnv mem;
  mem.set_bytes(kPath, {});
  FaultEnv env(mem, {.max_read = 3, .max_write = 4});
  auto f = *env.open(kPath, Access::ReadWrite);
  ASSERT_TRUE(f->write_at(0, bytes_of("0123456789")));
  EXPECT_EQ(env.state().calls(Op::Write), 3u);  // 4 + 4 + 2
  std::vector<std::byte> buf(10);
  ASSERT_TRUE(f->read_at(0, buf));
  EXPECT_EQ(buf, bytes_of("0123456789"));
  EXPECT_EQ(env.state().calls(Op::Read), 4u);  // 3 + 3 + 3 + 1
  // A fault in the middle of a split write fails the whole write_at, leaving the first pieces written.
  env.state().set_plan({.fail_at = env.state().calls() + 2, .max_write = 4});
  EXPECT_FALSE(f->write_at(0, bytes_of("abcdefghij")));
  EXPECT_EQ(*mem.bytes(kPath), bytes_of("abcd456789"));
}

TEST(FaultEnv, OnlyPathLeavesOtherFilesAlone) {
  MemEnv mem;
  seed(mem);
  mem.set_bytes("/mem/other", bytes_of("other"));
  FaultEnv env(mem, {.fail_at = 1, .persistence = Persistence::Persistent}, kPath);
  auto other = *env.open("/mem/other", Access::ReadWrite);
  EXPECT_TRUE(other->write_at(0, bytes_of("OTHER")));
  EXPECT_TRUE(other->flush());
  EXPECT_TRUE(env.sync_dir("/elsewhere"));
  EXPECT_EQ(env.state().calls(), 0u);
  auto f = *env.open(kPath, Access::ReadWrite);
  EXPECT_FALSE(f->flush());
  EXPECT_FALSE(env.rename(kPath, "/mem/x"));
  EXPECT_TRUE(env.exists(kPath));
}

TEST(FaultEnv, WrapsPosixFilesToo) {
  vhdkit::testing::TempDir dir;
  std::string path = dir.file("img");
  vhdkit::testing::write_file(path, std::vector<std::byte>(4096, std::byte{1}));
  FaultEnv env(Env::posix(), {.counted = {Op::Flush}, .fail_at = 1, .fault = Fault::NoSpace});
  auto f = *env.open(path, Access::ReadWrite);
  ASSERT_TRUE(f->write_at(0, bytes_of("abc")));
  auto s = f->flush();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().path(), path);
  EXPECT_NE(s.error().what().find("No space left on device"), std::string::npos) << s.error().what();
  EXPECT_FALSE(f->write_at(0, bytes_of("def")));
  std::vector<std::byte> buf(3);
  ASSERT_TRUE(f->read_at(0, buf));
  EXPECT_EQ(buf, bytes_of("abc"));
}

}  // namespace
}  // namespace vhdkit::io
