// SPDX-License-Identifier: Apache-2.0
// A reader who may not write an image must not be able to keep its owner, or qemu, from writing it: looping
// dry runs or state calls would otherwise hold a shared lock that refuses every writer. Such readers read
// with io::LockMode::NoWriter (refused while someone writes, holding nothing), and a writer that came while
// they read makes their answer InUse instead of a mix of two states of the image.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "compact/prepare.h"
#include "daemon_fixture.h"
#include "image/open_image.h"
#include "io/testing/mem_env.h"
#include "service/image_state.h"

namespace vhdkit::testing {
namespace {

using compact::ReaderLock;

compact::Options dry_run(ReaderLock lock) {
  compact::Options o;
  o.mode = compact::Mode::Prezeroed;
  o.action = compact::Action::DryRun;
  o.reader_lock = lock;
  return o;
}

std::string mem_image(io::MemEnv& env) {
  disk::CreateOptions c;
  c.format = disk::Format::Vhd;
  c.virtual_size = 8 * kMiB;
  auto d = image::create_image(env, "/m/a.vhd", c);
  EXPECT_TRUE(d) << d.error().what();
  std::vector<std::byte> data(4096, std::byte{7});
  EXPECT_TRUE((*d)->write(0, data));
  return "/m/a.vhd";
}

// Another open of the image, for writing (a writer coming while the reader reads).
std::unique_ptr<io::File> writer_beside(io::MemEnv& env, const std::string& path) {
  auto f = env.open(path, io::Access::ReadWrite);
  EXPECT_TRUE(f) << f.error().what();
  return f ? std::move(*f) : nullptr;
}

TEST(ReaderLock, ANoWriterReaderLetsAWriterInAndItsAnswerBecomesInUse) {
  io::MemEnv env;
  const std::string path = mem_image(env);
  auto reader = compact::prepare(env, path, dry_run(ReaderLock::NoWriter));
  ASSERT_TRUE(reader) << reader.error().what();
  auto writer = writer_beside(env, path);
  ASSERT_TRUE(writer->try_lock(io::LockMode::Exclusive)) << "the reader kept the writer out";
  auto report = (*reader)->run(env, nullptr);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code(), ReturnCode::InUse);
  EXPECT_NE(report.error().message().find("while it was read"), std::string::npos) << report.error().what();
  // And while the writer holds it, a new NoWriter reader is refused at once.
  auto later = compact::prepare(env, path, dry_run(ReaderLock::NoWriter));
  ASSERT_FALSE(later);
  EXPECT_EQ(later.error().code(), ReturnCode::InUse);
}

TEST(ReaderLock, ASharedReaderStillKeepsWritersOut) {
  io::MemEnv env;
  const std::string path = mem_image(env);
  auto reader = compact::prepare(env, path, dry_run(ReaderLock::Shared));
  ASSERT_TRUE(reader) << reader.error().what();
  EXPECT_FALSE(writer_beside(env, path)->try_lock(io::LockMode::Exclusive));
  auto report = (*reader)->run(env, nullptr);
  EXPECT_TRUE(report) << report.error().what();
}

// On the host, with qemu as the writer: qemu-io may open the image for writing while a NoWriter dry run
// holds it (it may not while a Shared one does), and a NoWriter dry run is refused while qemu-io writes.
TEST(ReaderLock, QemuWritesBesideANoWriterReaderAndIsNamedWhenItHoldsTheImage) {
  TempDir dir;
  const std::string img = make_dynamic_vhd(dir, "a.vhd", "DZ");
  const std::string write = "qemu-io -f vpc -c 'write -P 9 0 512' " + q(img) + " 2>&1";
  {
    auto reader = compact::prepare(io::Env::posix(), img, dry_run(ReaderLock::NoWriter));
    ASSERT_TRUE(reader) << reader.error().what();
    RunResult w = run(write);
    EXPECT_EQ(w.status, 0) << w.out;
  }
  {
    auto reader = compact::prepare(io::Env::posix(), img, dry_run(ReaderLock::Shared));
    ASSERT_TRUE(reader) << reader.error().what();
    RunResult w = run(write);
    EXPECT_NE(w.status, 0) << "qemu-io wrote beside a shared reader: " << w.out;
  }
  ChildProcess holder({"/usr/bin/qemu-io", "-f", "vpc", img}, "", Stdin::OpenPipe);
  ASSERT_TRUE(wait_until([&] { return file_is_locked(img); })) << "qemu-io never took its lock";
  auto refused = compact::prepare(io::Env::posix(), img, dry_run(ReaderLock::NoWriter));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ReturnCode::InUse);
  EXPECT_NE(refused.error().message().find("qemu-io"), std::string::npos) << refused.error().what();
}

// Through vhdkitd: the service picks NoWriter for a caller who cannot write the image and Shared for one
// who can (reader_lock_for), and a reader's state call while qemu writes says "in use".
TEST(ReaderLock, TheServiceReadsForAReaderWithoutHoldingTheImage) {
  TempDir dir;
  open_to_everyone(dir);
  const std::string img = make_dynamic_vhd(dir, "a.vhd", "DZ");
  ::chmod(img.c_str(), 0644);
  EXPECT_EQ(service::reader_lock_for(io::Env::posix(), img), ReaderLock::Shared);  // root may write it
  Daemon d(dir);
  auto state = d.call_as("nobody", "POST", std::string(service::kStatePath), nlohmann::json{{"Path", img}});
  ASSERT_EQ(state.body["ReturnValue"], 0) << state.body.dump();
  EXPECT_EQ(state.body["State"]["InUse"], false);
  ChildProcess holder({"/usr/bin/qemu-io", "-f", "vpc", img}, "", Stdin::OpenPipe);
  ASSERT_TRUE(wait_until([&] { return file_is_locked(img); }));
  auto held = d.call_as("nobody", "POST", std::string(service::kStatePath), nlohmann::json{{"Path", img}});
  ASSERT_EQ(held.body["ReturnValue"], 0) << held.body.dump();
  EXPECT_EQ(held.body["State"]["InUse"], true);
}

}  // namespace
}  // namespace vhdkit::testing
