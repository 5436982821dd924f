// SPDX-License-Identifier: Apache-2.0
// What MemEnv adds for tests beyond the File/Env contract: permissions, byte access, shared opens.
#include <gtest/gtest.h>

#include "io/testing/mem_env.h"

namespace vhdkit::io {
namespace {

std::vector<std::byte> bytes(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(std::byte(static_cast<uint8_t>(b)));
  return out;
}

TEST(MemEnv, ReadOnlyFilesAndDirectoriesAreAccessDenied) {
  MemEnv mem;
  mem.set_bytes("/d/file", bytes({1, 2, 3}));
  mem.set_permission("/d/file", Permission::ReadOnly);
  EXPECT_EQ(mem.open("/d/file", Access::ReadWrite).error().code(), ReturnCode::AccessDenied);
  EXPECT_TRUE(mem.open("/d/file", Access::ReadOnly));
  auto s = mem.check_writable("/d/file");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "the file is not writable");

  mem.set_permission("/d/file", Permission::ReadWrite);
  mem.set_directory_permission("/d", Permission::ReadOnly);
  s = mem.check_writable("/d/file");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ReturnCode::AccessDenied);
  EXPECT_EQ(s.error().message(), "its directory /d is not writable");
  EXPECT_TRUE(mem.open("/d/file", Access::ReadWrite)) << "an existing file can still be written";
  EXPECT_EQ(mem.open("/d/new", Access::ReadWrite, Creation::CreateNew).error().code(), ReturnCode::AccessDenied);
  EXPECT_EQ(mem.rename("/d/file", "/e/file").error().code(), ReturnCode::AccessDenied);
  EXPECT_EQ(mem.remove("/d/file").error().code(), ReturnCode::AccessDenied);
  EXPECT_TRUE(mem.exists("/d/file"));
  mem.set_directory_permission("/d", Permission::ReadWrite);
  EXPECT_TRUE(mem.rename("/d/file", "/e/file"));
}

TEST(MemEnv, OpensOfOnePathShareBytesAndARenamedOpenFileKeepsItsBytes) {
  MemEnv mem;
  mem.set_bytes("/a", bytes({0, 0, 0}));
  auto one = *mem.open("/a", Access::ReadWrite);
  auto two = *mem.open("/a", Access::ReadOnly);
  ASSERT_TRUE(one->write_at(1, bytes({7})));
  std::vector<std::byte> buf(3);
  ASSERT_TRUE(two->read_at(0, buf));
  EXPECT_EQ(buf, bytes({0, 7, 0}));
  EXPECT_EQ(static_cast<MemFile&>(*one).bytes(), bytes({0, 7, 0}));
  ASSERT_TRUE(mem.rename("/a", "/b"));
  ASSERT_TRUE(one->write_at(0, bytes({9})));
  EXPECT_EQ(*mem.bytes("/b"), bytes({9, 7, 0}));
  mem.set_bytes("/b", bytes({5}));
  EXPECT_EQ(*two->size(), 1u) << "set_bytes replaces the content under open files";
  EXPECT_FALSE(mem.bytes("/a"));
  EXPECT_EQ(mem.paths(), std::vector<std::string>{"/b"});
}

TEST(MemEnv, ALoneMemFileWorks) {
  auto f = make_mem_file("lone", bytes({1, 2}));
  ASSERT_TRUE(f->write_at(4, bytes({3})));
  EXPECT_EQ(static_cast<MemFile&>(*f).bytes(), bytes({1, 2, 0, 0, 3}));
  EXPECT_EQ(f->path(), "lone");
}

}  // namespace
}  // namespace vhdkit::io
