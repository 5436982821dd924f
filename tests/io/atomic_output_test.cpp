// SPDX-License-Identifier: Apache-2.0
// AtomicOutput: the target holds its old content or the whole new file, and no temporary file is left,
// whichever call fails.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "io/atomic_output.h"
#include "io/testing/fault_env.h"
#include "io/testing/mem_env.h"
#include "test_support.h"

namespace vhdkit::io {
namespace {

const std::string kTarget = "/out/compacted.vhdx";

std::vector<std::byte> text(std::string_view s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

Status fill_new(File& f) {
  VHDKIT_TRY(f.write_at(0, text("new content")));
  return f.write_at(11, text("!"));
}

TEST(AtomicOutput, ReplacesTheTargetAndSyncsItsDirectory) {
  MemEnv mem;
  mem.set_bytes(kTarget, text("old"));
  ASSERT_TRUE(write_atomically(mem, kTarget, fill_new));
  EXPECT_EQ(*mem.bytes(kTarget), text("new content!"));
  EXPECT_EQ(mem.paths(), std::vector<std::string>{kTarget}) << "no temporary file is left";
  EXPECT_EQ(mem.sync_dir_calls(), 1u);
}

TEST(AtomicOutput, TheTemporaryFileLivesBesideTheTargetAndGoesAwayWhenAbandoned) {
  MemEnv mem;
  {
    auto out = AtomicOutput::begin(mem, kTarget);
    ASSERT_TRUE(out);
    EXPECT_EQ(directory_of(out->temp_path()), "/out");
    EXPECT_NE(out->temp_path().find(".compacted.vhdx.vhdkit-tmp-"), std::string::npos) << out->temp_path();
    EXPECT_TRUE(mem.exists(out->temp_path()));
    auto second = AtomicOutput::begin(mem, kTarget);
    ASSERT_TRUE(second);
    EXPECT_NE(second->temp_path(), out->temp_path()) << "two writers of one output never share a temp file";
  }
  EXPECT_TRUE(mem.paths().empty());
  EXPECT_EQ(directory_of("bare"), ".");
}

TEST(AtomicOutput, AFailingFillLeavesTheTargetAlone) {
  MemEnv mem;
  mem.set_bytes(kTarget, text("old"));
  auto s = write_atomically(mem, kTarget,
                            [](File&) -> Status { return fail(ReturnCode::Failed, "x", "the compaction failed"); });
  ASSERT_FALSE(s);
  EXPECT_EQ(*mem.bytes(kTarget), text("old"));
  EXPECT_EQ(mem.paths(), std::vector<std::string>{kTarget});
}

TEST(AtomicOutput, EveryFailingCallLeavesOldOrNewAndNoTemporaryFile) {
  MemEnv counting_mem;
  FaultEnv counting(counting_mem);
  ASSERT_TRUE(write_atomically(counting, kTarget, fill_new));
  const uint64_t calls = counting.state().calls();
  EXPECT_EQ(calls, 5u);  // write, write, flush, rename, sync dir
  for (uint64_t n = 1; n <= calls; ++n) {
    SCOPED_TRACE(fmt::format("call {} fails", n));
    MemEnv mem;
    mem.set_bytes(kTarget, text("old"));
    FaultEnv env(mem, {.fail_at = n});
    auto s = write_atomically(env, kTarget, fill_new);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().path(), kTarget);
    EXPECT_EQ(mem.paths(), std::vector<std::string>{kTarget});
    bool synced_dir_failed = env.state().log().back().op == Op::SyncDir;
    EXPECT_EQ(*mem.bytes(kTarget), synced_dir_failed ? text("new content!") : text("old"));
    if (synced_dir_failed) {
      EXPECT_NE(s.error().message().find("may not survive a power cut"), std::string::npos) << s.error().what();
    }
  }
}

TEST(AtomicOutput, WorksOnTheHostWithAFileReopenedByPath) {
  vhdkit::testing::TempDir dir;
  std::string target = dir.file("out.img");
  auto out = AtomicOutput::begin(Env::posix(), target);
  ASSERT_TRUE(out) << out.error().what();
  ASSERT_TRUE(out->file().write_at(0, text("first")));
  out->close_file();
  {
    auto again = Env::posix().open(out->temp_path(), Access::ReadWrite);
    ASSERT_TRUE(again);
    ASSERT_TRUE((*again)->write_at(5, text(" second")));
  }
  ASSERT_TRUE(out->commit());
  EXPECT_EQ(vhdkit::testing::read_file(target), text("first second"));
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
  EXPECT_FALSE(out->commit()) << "a second commit is refused";
}

TEST(AtomicOutput, AMissingDirectoryIsReportedForTheTarget) {
  vhdkit::testing::TempDir dir;
  auto out = AtomicOutput::begin(Env::posix(), dir.file("no/such/dir/out.img"));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code(), ReturnCode::FileNotFound);
  EXPECT_EQ(out.error().path(), dir.file("no/such/dir/out.img"));
}

}  // namespace
}  // namespace vhdkit::io
