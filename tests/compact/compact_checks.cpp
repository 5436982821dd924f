// SPDX-License-Identifier: Apache-2.0
#include "compact_checks.h"
#include "image/open_image.h"

#include <sys/stat.h>
#include <unistd.h>

#include "image/compare.h"

namespace vhdkit::testing {

using compact::Action;
using compact::Options;
using compact::Outcome;
using compact::Report;

Report compact_ok(const std::string& path, Options options) {
  auto r = compact::compact_image(io::Env::posix(), path, options);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().what());
  return r ? *r : Report{};
}

Report dry_run(const std::string& path, compact::Mode mode) {
  Options o;
  o.mode = mode;
  o.action = Action::DryRun;
  return compact_ok(path, o);
}

void expect_fully_compacted(const std::string& path, compact::Mode mode) {
  Report again = dry_run(path, mode);
  EXPECT_EQ(again.blocks_released, 0u);
  EXPECT_EQ(again.blocks_moved, 0u);
  EXPECT_EQ(again.file_size_after, again.file_size_before);
}

void expect_refused(const std::string& image, ReturnCode code, const std::vector<std::string>& phrases) {
  const std::string before = sha256(image);
  for (Action action : {Action::Compact, Action::DryRun}) {
    Options o;
    o.action = action;
    auto r = compact::compact_image(io::Env::posix(), image, o);
    ASSERT_FALSE(r.has_value()) << image;
    EXPECT_EQ(r.error().code(), code) << r.error().what();
    for (const std::string& phrase : phrases)
      EXPECT_NE(r.error().message().find(phrase), std::string::npos) << r.error().message();
  }
  EXPECT_EQ(sha256(image), before) << image << " was written to";
}

void expect_same_reading(const std::string& a, const std::string& b) {
  auto da = image::open_image(io::Env::posix(), a), db = image::open_image(io::Env::posix(), b);
  ASSERT_TRUE(da.has_value()) << da.error().what();
  ASSERT_TRUE(db.has_value()) << db.error().what();
  auto c = image::compare_contents(**da, **db, image::SizeRule::Strict);
  ASSERT_TRUE(c.has_value()) << c.error().what();
  EXPECT_TRUE(c->equal) << a << " and " << b << " differ first at byte " << c->first_difference.value_or(0);
}

Report compact_and_referee(const std::string& image, QemuReads qemu, compact::Mode mode) {
  std::string orig = keep_copy(image);
  Report predicted = dry_run(image, mode);
  EXPECT_EQ(sha256(image), sha256(orig)) << "a dry run wrote to the image";
  Options options;
  options.mode = mode;
  Report done = compact_ok(image, options);
  EXPECT_EQ(done.outcome, Outcome::Completed);
  EXPECT_EQ(done.blocks_released, predicted.blocks_released);
  EXPECT_EQ(done.blocks_moved, predicted.blocks_moved);
  EXPECT_EQ(done.file_size_after, predicted.file_size_after);
  EXPECT_EQ(file_size(image), predicted.file_size_after);
  EXPECT_EQ(file_size(orig) - file_size(image), predicted.bytes_released);
  expect_same_reading(orig, image);
  if (qemu == QemuReads::Yes) expect_same_content(orig, image);
  expect_tools_accept(image, qemu);
  auto problems = our_check(io::Env::posix(), image);
  EXPECT_TRUE(problems.empty()) << problems.front();
  expect_fully_compacted(image, mode);
  return done;
}

QemuIoHolder::QemuIoHolder(const std::string& image)
    : process_(std::make_unique<ChildProcess>(std::vector<std::string>{"qemu-io", "-f", qemu_format(image), image}, "",
                                              Stdin::OpenPipe, Stdout::Log, StopBy::ClosingStdin)) {
  EXPECT_TRUE(wait_until([&] { return file_is_locked(image); })) << "qemu-io never took its lock on " << image;
}

Unwritable::Unwritable(std::string path) : path_(std::move(path)) {
  if (::geteuid() == 0)
    run_ok("chattr +i " + q(path_));
  else
    ::chmod(path_.c_str(), 0555);
}

Unwritable::~Unwritable() {
  if (::geteuid() == 0)
    run_ok("chattr -i " + q(path_));
  else
    ::chmod(path_.c_str(), 0755);
}

void Recorder::progress(uint64_t done, uint64_t total) {
  EXPECT_LE(done, total);
  if (!seen.empty()) {
    EXPECT_EQ(total, seen.back().second);
    EXPECT_GE(done, seen.back().first);
  }
  seen.push_back({done, total});
}

}  // namespace vhdkit::testing
