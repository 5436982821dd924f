// SPDX-License-Identifier: Apache-2.0
// Locks against the real referees: qemu-io and qemu-nbd holding an image, and qemu refusing an image that
// vhdkit holds. Also copy_range through copy_file_range.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "child_process.h"
#include "io/file.h"
#include "test_support.h"

namespace vhdkit::io {
namespace {

using vhdkit::testing::ChildProcess;
using vhdkit::testing::file_is_locked;
using vhdkit::testing::q;
using vhdkit::testing::run;
using vhdkit::testing::run_ok;
using vhdkit::testing::Stdin;
using vhdkit::testing::Stdout;
using vhdkit::testing::StopBy;
using vhdkit::testing::TempDir;

class PosixLocks : public ::testing::Test {
 protected:
  void SetUp() override { run_ok("qemu-img create -q -f raw " + q(img_) + " 4M"); }

  std::unique_ptr<File> open(Access access) {
    auto f = Env::posix().open(img_, access);
    EXPECT_TRUE(f) << f.error().what();
    return std::move(*f);
  }

  // qemu-io with the image open, reading commands from its stdin (a pipe), until the object dies.
  std::unique_ptr<ChildProcess> qemu_io(const std::vector<std::string>& extra) {
    std::vector<std::string> argv{"qemu-io", "-f", "raw"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(img_);
    auto p = std::make_unique<ChildProcess>(argv, dir_.file("qemu-io.log"), Stdin::OpenPipe, Stdout::Log,
                                            StopBy::ClosingStdin);
    EXPECT_TRUE(vhdkit::testing::wait_until([&] { return file_is_locked(img_); })) << "qemu-io never locked the image";
    return p;
  }

  TempDir dir_;
  std::string img_ = dir_.file("disk.img");
};

TEST_F(PosixLocks, SecondOpenInThisProgramIsNamedAsSuch) {
  auto first = open(Access::ReadWrite);
  auto second = open(Access::ReadWrite);
  ASSERT_TRUE(first->try_lock(LockMode::Exclusive));
  auto s = second->try_lock(LockMode::Exclusive);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ReturnCode::InUse);
  EXPECT_NE(s.error().message().find(fmt::format("(pid {}, another open in this program)", ::getpid())),
            std::string::npos)
      << s.error().what();
}

TEST_F(PosixLocks, QemuIoWriterIsNamedAndBlocksBothLocks) {
  auto holder = qemu_io({});
  auto f = open(Access::ReadWrite);
  const std::string named = fmt::format("the image is in use by qemu-io (pid {})", holder->pid());
  auto exclusive = f->try_lock(LockMode::Exclusive);
  ASSERT_FALSE(exclusive);
  EXPECT_EQ(exclusive.error().code(), ReturnCode::InUse);
  EXPECT_EQ(exclusive.error().message(), named);
  auto ro = open(Access::ReadOnly);
  auto shared = ro->try_lock(LockMode::Shared);
  ASSERT_FALSE(shared) << "qemu-io has it open for writing: reading it now is not safe";
  EXPECT_EQ(shared.error().message(), named + ", which has it open for writing");

  holder->send("quit\n");
  EXPECT_EQ(holder->stop(), 0);
  auto after = f->try_lock(LockMode::Exclusive);
  EXPECT_TRUE(after) << after.error().what();
}

TEST_F(PosixLocks, QemuIoReaderSharesWithReadersOnly) {
  auto holder = qemu_io({"-r"});
  auto ro = open(Access::ReadOnly);
  auto shared = ro->try_lock(LockMode::Shared);
  EXPECT_TRUE(shared) << shared.error().what();
  auto rw = open(Access::ReadWrite);
  auto exclusive = rw->try_lock(LockMode::Exclusive);
  ASSERT_FALSE(exclusive);
  EXPECT_NE(exclusive.error().message().find(fmt::format("qemu-io (pid {})", holder->pid())), std::string::npos)
      << exclusive.error().what();
}

TEST_F(PosixLocks, QemuNbdServerIsNamed) {
  ChildProcess nbd({"qemu-nbd", "-f", "raw", "--socket=" + dir_.file("nbd.sock"), img_}, dir_.file("nbd.log"),
                   Stdin::Null, Stdout::Log, StopBy::Signal);
  ASSERT_TRUE(vhdkit::testing::wait_until([&] { return file_is_locked(img_); }));
  auto f = open(Access::ReadWrite);
  auto s = f->try_lock(LockMode::Exclusive);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), fmt::format("the image is in use by qemu-nbd (pid {})", nbd.pid()));
}

TEST_F(PosixLocks, QemuRefusesAnImageWeHoldExclusively) {
  auto f = open(Access::ReadWrite);
  ASSERT_TRUE(f->try_lock(LockMode::Exclusive));
  // (qemu-img info asks for no permission on the image, so no lock stops it: it is not in this list.)
  for (const std::string cmd :
       {"qemu-io -f raw -c 'read 0 512' ", "qemu-io -r -f raw -c 'read 0 512' ", "qemu-img convert -f raw -O raw "}) {
    auto r = run(cmd + q(img_) + (cmd.starts_with("qemu-img convert") ? " " + q(dir_.file("copy")) : ""));
    EXPECT_NE(r.status, 0) << cmd << " opened an image vhdkit holds exclusively\n" << r.out;
    EXPECT_NE(r.err.find("lock"), std::string::npos) << cmd << ": " << r.err;
  }
  ASSERT_TRUE(f->unlock());
  run_ok("qemu-io -f raw -c 'read 0 512' " + q(img_));
}

TEST_F(PosixLocks, QemuReadsButDoesNotWriteAnImageWeHoldShared) {
  auto f = open(Access::ReadOnly);
  ASSERT_TRUE(f->try_lock(LockMode::Shared));
  run_ok("qemu-img info -f raw " + q(img_));
  run_ok("qemu-io -r -f raw -c 'read 0 512' " + q(img_));
  auto w = run("qemu-io -f raw -c 'write 0 512' " + q(img_));
  EXPECT_NE(w.status, 0) << "qemu-io wrote an image vhdkit is reading\n" << w.out;
  EXPECT_NE(w.err.find("lock"), std::string::npos) << w.err;
  // Other vhdkit readers share; a vhdkit writer does not.
  auto reader = open(Access::ReadOnly);
  EXPECT_TRUE(reader->try_lock(LockMode::Shared));
  auto writer = open(Access::ReadWrite);
  EXPECT_FALSE(writer->try_lock(LockMode::Exclusive));
  // Dropping to shared after exclusive leaves only the shared lock.
  ASSERT_TRUE(f->unlock());
  ASSERT_TRUE(reader->unlock());
  ASSERT_TRUE(writer->try_lock(LockMode::Exclusive));
  ASSERT_TRUE(writer->try_lock(LockMode::Shared));
  run_ok("qemu-img info -f raw " + q(img_));
}

TEST(PosixCopyRange, CopiesInTheKernelAndLeavesTheSourceAlone) {
  TempDir dir;
  std::string path = dir.file("f");
  std::vector<std::byte> data(5 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = std::byte(static_cast<uint8_t>(i * 13 + i / 4096));
  vhdkit::testing::write_file(path, data);
  auto f = *Env::posix().open(path, Access::ReadWrite);
  ASSERT_TRUE(f->copy_range(4096, 6 << 20, 3 << 20));
  ASSERT_TRUE(f->flush());
  auto all = vhdkit::testing::read_file(path);
  ASSERT_EQ(all.size(), (6u << 20) + (3u << 20));
  EXPECT_TRUE(std::equal(data.begin(), data.end(), all.begin()));
  EXPECT_TRUE(std::equal(data.begin() + 4096, data.begin() + 4096 + (3 << 20), all.begin() + (6 << 20)));
  auto past = f->copy_range(8 << 20, 0, 2 << 20);  // the file ends at 9 MiB
  ASSERT_FALSE(past);
  EXPECT_NE(past.error().message().find("past the end"), std::string::npos) << past.error().what();
}

}  // namespace
}  // namespace vhdkit::io
