// SPDX-License-Identifier: Apache-2.0
// The File/Env contract, run against every implementation: what any code above src/io may rely on.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <numeric>

#include "io/file.h"
#include "io/testing/crash_env.h"
#include "io/testing/fault_env.h"
#include "io/testing/mem_env.h"
#include "test_support.h"

namespace vhdkit::io {
namespace {

using vhdkit::testing::TempDir;

// One implementation under test: an Env and a place to put files in it.
struct EnvUnderTest {
  virtual ~EnvUnderTest() = default;
  virtual Env& env() = 0;
  virtual std::string path(const std::string& name) = 0;
};

struct PosixUnderTest : EnvUnderTest {
  TempDir dir;
  Env& env() override { return Env::posix(); }
  std::string path(const std::string& name) override { return dir.file(name); }
};

struct MemUnderTest : EnvUnderTest {
  MemEnv mem;
  Env& env() override { return mem; }
  std::string path(const std::string& name) override { return "/mem/" + name; }
};

// No faults planned, but every transfer is short: the base class's loops must still move every byte.
struct ShortIoUnderTest : EnvUnderTest {
  MemEnv mem;
  FaultEnv faults{mem, FaultPlan{.max_read = 1000, .max_write = 777}};
  Env& env() override { return faults; }
  std::string path(const std::string& name) override { return "/mem/" + name; }
};

struct CrashUnderTest : EnvUnderTest {
  CrashEnv crash;
  Env& env() override { return crash; }
  std::string path(const std::string& name) override { return "/mem/" + name; }
};

struct Implementation {
  std::string name;
  std::function<std::unique_ptr<EnvUnderTest>()> make;
};

void PrintTo(const Implementation& impl, std::ostream* os) { *os << impl.name; }

std::vector<Implementation> implementations() {
  return {
      {"Posix", [] { return std::make_unique<PosixUnderTest>(); }},
      {"Mem", [] { return std::make_unique<MemUnderTest>(); }},
      {"FaultShortIo", [] { return std::make_unique<ShortIoUnderTest>(); }},
      {"Crash", [] { return std::make_unique<CrashUnderTest>(); }},
  };
}

std::vector<std::byte> pattern(size_t n, uint8_t seed = 1) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::byte(static_cast<uint8_t>(seed + i * 7 + i / 251));
  return v;
}

class FileContract : public ::testing::TestWithParam<Implementation> {
 protected:
  void SetUp() override { impl_ = GetParam().make(); }
  Env& env() { return impl_->env(); }
  std::string path(const std::string& name = "f") { return impl_->path(name); }

  std::unique_ptr<File> create(const std::string& name = "f", const std::vector<std::byte>& content = {}) {
    auto f = env().open(path(name), Access::ReadWrite, Creation::CreateOrTruncate);
    EXPECT_TRUE(f) << f.error().what();
    if (!content.empty()) {
      EXPECT_TRUE((*f)->write_at(0, content));
    }
    return std::move(*f);
  }
  std::vector<std::byte> read_all(File& f) {
    auto size = f.size();
    EXPECT_TRUE(size);
    std::vector<std::byte> v(static_cast<size_t>(*size));
    EXPECT_TRUE(f.read_at(0, v));
    return v;
  }

  std::unique_ptr<EnvUnderTest> impl_;
};

TEST_P(FileContract, ReadsExactlyAndNamesTheEndOfFile) {
  auto data = pattern(10000);
  auto f = create("f", data);
  std::vector<std::byte> buf(3000);
  ASSERT_TRUE(f->read_at(5000, buf));
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), data.begin() + 5000));

  auto past = f->read_at(9000, buf);
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().code(), ReturnCode::Failed);
  EXPECT_NE(past.error().message().find("unexpected end of file"), std::string::npos) << past.error().what();
  EXPECT_NE(past.error().message().find("ends at 10000"), std::string::npos) << past.error().what();
  EXPECT_EQ(past.error().path(), path());

  auto n = f->read_up_to(9000, buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1000u);
  auto at_end = f->read_up_to(10000, buf);
  ASSERT_TRUE(at_end);
  EXPECT_EQ(*at_end, 0u);
}

TEST_P(FileContract, WritePastTheEndExtendsWithZeros) {
  auto f = create("f", pattern(100));
  auto tail = pattern(50, 9);
  ASSERT_TRUE(f->write_at(1000, tail));
  EXPECT_EQ(*f->size(), 1050u);
  auto all = read_all(*f);
  EXPECT_TRUE(std::all_of(all.begin() + 100, all.begin() + 1000, [](std::byte b) { return b == std::byte{0}; }));
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), all.begin() + 1000));
  ASSERT_TRUE(f->flush());
}

TEST_P(FileContract, TruncateShrinksAndGrowsWithZeros) {
  auto data = pattern(8192);
  auto f = create("f", data);
  ASSERT_TRUE(f->truncate(1000));
  EXPECT_EQ(*f->size(), 1000u);
  ASSERT_TRUE(f->truncate(3000));
  auto all = read_all(*f);
  ASSERT_EQ(all.size(), 3000u);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 1000, all.begin()));
  EXPECT_TRUE(std::all_of(all.begin() + 1000, all.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_P(FileContract, PunchHoleReadsZerosKeepsSizeAndFreesBlocks) {
  auto data = pattern(64 * 1024);
  auto f = create("f", data);
  ASSERT_TRUE(f->flush());
  auto before = f->allocated_bytes();
  ASSERT_TRUE(before);
  EXPECT_GE(*before, 64u * 1024);
  ASSERT_TRUE(f->punch_hole(4096, 32768));
  ASSERT_TRUE(f->punch_hole(100, 10));        // inside a block: zeroed, still allocated
  ASSERT_TRUE(f->punch_hole(60000, 100000));  // past the end: the size stays
  EXPECT_EQ(*f->size(), 64u * 1024);
  auto all = read_all(*f);
  auto is_zero = [](std::byte b) { return b == std::byte{0}; };
  EXPECT_TRUE(std::all_of(all.begin() + 4096, all.begin() + 4096 + 32768, is_zero));
  EXPECT_TRUE(std::all_of(all.begin() + 100, all.begin() + 110, is_zero));
  EXPECT_TRUE(std::all_of(all.begin() + 60000, all.end(), is_zero));
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 100, all.begin()));
  EXPECT_TRUE(std::equal(data.begin() + 110, data.begin() + 4096, all.begin() + 110));
  EXPECT_TRUE(std::equal(data.begin() + 36864, data.begin() + 60000, all.begin() + 36864));
  EXPECT_LE(*f->allocated_bytes(), *before - 32768);
}

TEST_P(FileContract, CopyRangeCopiesAndRefusesOverlap) {
  auto data = pattern(3 << 20);  // more than one 1 MiB chunk of the fallback
  auto f = create("f", data);
  const uint64_t len = (1 << 20) + 12345;
  ASSERT_TRUE(f->copy_range(100, (2 << 20) + 7, len));
  auto all = read_all(*f);
  EXPECT_EQ(all.size(), std::max<uint64_t>(data.size(), (2 << 20) + 7 + len));
  EXPECT_TRUE(
      std::equal(data.begin() + 100, data.begin() + 100 + static_cast<ptrdiff_t>(len), all.begin() + (2 << 20) + 7));
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + (2 << 20) + 7, all.begin()));

  auto overlap = f->copy_range(0, 100, 1000);
  ASSERT_FALSE(overlap);
  EXPECT_EQ(overlap.error().code(), ReturnCode::InvalidParameter);
  EXPECT_FALSE(f->sticky_error()) << "a refused argument changes nothing and must not poison the file";
  EXPECT_TRUE(f->copy_range(0, 100, 0));
}

TEST_P(FileContract, ReadOnlyOpenRefusesWritesButReadsAndTakesSharedLock) {
  create("f", pattern(4096));
  auto ro = env().open(path(), Access::ReadOnly);
  ASSERT_TRUE(ro) << ro.error().what();
  auto w = (*ro)->write_at(0, pattern(10));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), ReturnCode::AccessDenied) << w.error().what();
  std::vector<std::byte> buf(4096);
  EXPECT_TRUE((*ro)->read_at(0, buf));
  auto shared = (*ro)->try_lock(LockMode::Shared);
  EXPECT_TRUE(shared) << shared.error().what();
  auto exclusive = (*ro)->try_lock(LockMode::Exclusive);
  ASSERT_FALSE(exclusive);
  EXPECT_EQ(exclusive.error().code(), ReturnCode::InvalidState) << exclusive.error().what();
}

TEST_P(FileContract, SecondExclusiveLockIsInUseUntilTheFirstGoes) {
  auto first = create("f", pattern(4096));
  auto second = env().open(path(), Access::ReadWrite);
  ASSERT_TRUE(second);
  ASSERT_TRUE(first->try_lock(LockMode::Exclusive));
  for (LockMode mode : {LockMode::Exclusive, LockMode::Shared}) {
    auto s = (*second)->try_lock(mode);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code(), ReturnCode::InUse);
    EXPECT_NE(s.error().message().find("in use by"), std::string::npos) << s.error().what();
    EXPECT_EQ(s.error().path(), path());
  }
  ASSERT_TRUE(first->unlock());
  ASSERT_TRUE(first->try_lock(LockMode::Shared));
  EXPECT_TRUE((*second)->try_lock(LockMode::Shared)) << "two readers share";
  EXPECT_FALSE((*second)->try_lock(LockMode::Exclusive)) << "a reader blocks a writer";
  first.reset();  // closing releases the lock
  auto s = (*second)->try_lock(LockMode::Exclusive);
  EXPECT_TRUE(s) << s.error().what();
}

TEST_P(FileContract, EnvOpensCreatesRenamesAndRemoves) {
  auto missing = env().open(path("missing"), Access::ReadOnly);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ReturnCode::FileNotFound);
  EXPECT_FALSE(env().exists(path("missing")));
  EXPECT_EQ(env().check_writable(path("missing")).error().code(), ReturnCode::FileNotFound);

  create("a", pattern(10, 1));
  create("b", pattern(20, 2));
  EXPECT_FALSE(env().open(path("a"), Access::ReadWrite, Creation::CreateNew));
  EXPECT_TRUE(env().check_writable(path("a")));
  ASSERT_TRUE(env().rename(path("a"), path("b")));
  EXPECT_FALSE(env().exists(path("a")));
  auto b = env().open(path("b"), Access::ReadOnly);
  ASSERT_TRUE(b);
  EXPECT_EQ(read_all(**b), pattern(10, 1));
  ASSERT_TRUE(env().sync_dir(path("")));
  ASSERT_TRUE(env().remove(path("b")));
  EXPECT_FALSE(env().exists(path("b")));
  EXPECT_EQ(env().remove(path("b")).error().code(), ReturnCode::FileNotFound);

  auto t = create("t", pattern(100));
  auto again = env().open(path("t"), Access::ReadWrite, Creation::CreateOrTruncate);
  ASSERT_TRUE(again);
  EXPECT_EQ(*(*again)->size(), 0u);
}

// The parent rule lists an image's folder to find the children that name it: names only, sorted, the
// folder's own files and not those of its sub-folders.
TEST_P(FileContract, ListFilesNamesTheFolderFilesSortedWithoutSubfolders) {
  create("b.vhdx");
  create("a.vhd");
  create("c");
  if (GetParam().name == "Posix") std::filesystem::create_directories(path("sub"));
  create("sub/x");
  auto names = env().list_files(path(""));
  ASSERT_TRUE(names) << names.error().what();
  EXPECT_EQ(*names, (std::vector<std::string>{"a.vhd", "b.vhdx", "c"}));
  auto inner = env().list_files(path("sub"));
  ASSERT_TRUE(inner) << inner.error().what();
  EXPECT_EQ(*inner, std::vector<std::string>{"x"});
}

INSTANTIATE_TEST_SUITE_P(All, FileContract, ::testing::ValuesIn(implementations()),
                         [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace vhdkit::io
