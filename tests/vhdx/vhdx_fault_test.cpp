// SPDX-License-Identifier: Apache-2.0
// A VHDX compaction that fails half-way leaves a file as valid as it was (issue 14): an injected EIO or ENOSPC at
// every I/O call of a qemu-made image's compaction, and after each failure, with no recovery first, vhdkit opens
// the file read-only and reads what it read before, and so does qemu (qemu-img check, qemu-img compare).
//
// The one window where that cannot hold: a transaction's log entry is durable and the failing call is one of the
// writes that apply it, their flush, or the header update that closes the log. The File is poisoned by then
// (durability rule D7), so nothing can be written to close it; qemu refuses a read-only open of such a file. For
// those points the test proves that vhdkit's read-only open replays the log in memory and says it needs
// replaying, and that a later read-write open recovers (after which qemu reads it too).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "compact/compact.h"
#include "image/open_image.h"
#include "images.h"
#include "io/testing/fault_env.h"
#include "io/testing/mem_env.h"

namespace vhdkit::testing {
namespace {

constexpr const char* kSource = "/mem/disk.vhdx";

// The faults (a FaultPlan without fail_at): transient EIO, and ENOSPC from then on with half of the write done.
const std::pair<const char*, io::FaultPlan> kFaults[] = {
    {"EIO", {.fault = io::Fault::Eio}},
    {"ENOSPC, half written",
     {.fault = io::Fault::NoSpace,
      .persistence = io::Persistence::Persistent,
      .failed_write = io::FailedWrite::WritesPrefix}},
};

bool says_log_needs_replay(io::Env& env) {
  for (const std::string& p : our_check(env, kSource))
    if (p.starts_with("the log needs replaying")) return true;
  return false;
}

// qemu's verdict on the file as the failed run left it: qemu-img check opens it read-only (false when it refuses,
// with its reason in *why); then it must read what the original read.
bool qemu_reads_as_before(const TempDir& dir, io::MemEnv& mem, const std::string& original, std::string* why) {
  std::string state = dir.file("state.vhdx");
  write_file(state, *mem.bytes(kSource));
  RunResult check = run("qemu-img check -f vhdx " + q(state));
  *why = check.out + check.err;
  if (check.status != 0) return false;
  expect_same_content(original, state);
  return true;
}

TEST(VhdxCompactionFaults, EveryFailureLeavesAFileReadersOpenOrOneAReadWriteOpenRecovers) {
  TempDir dir;
  // 1 MiB blocks of data and zeros: the compaction releases, moves and shrinks (several transactions).
  std::string img = make_dynamic_vhdx(dir, "a.vhdx", "DZZDZDZZPD");
  const std::vector<std::byte> original = read_file(img);

  io::MemEnv counting_mem;
  counting_mem.set_bytes(kSource, original);
  const std::vector<std::byte> content = virtual_content(counting_mem, kSource);
  io::FaultEnv counting(counting_mem);
  auto clean = compact::compact_image(counting, kSource, {});
  ASSERT_TRUE(clean.has_value()) << clean.error().what();
  ASSERT_GT(clean->blocks_released, 0u);
  ASSERT_GT(clean->blocks_moved, 0u);
  ASSERT_LT(clean->file_size_after, original.size());
  const auto log = counting.state().log();

  uint64_t runs = 0, closed = 0, replay = 0;
  for (const auto& [fault_name, fault] : kFaults) {
    for (uint64_t n = 1; n <= log.size(); ++n) {
      SCOPED_TRACE(fmt::format("{} at call {} of {} ({} of {})", fault_name, n, log.size(),
                               io::to_string(log[n - 1].op), log[n - 1].path));
      io::MemEnv mem;
      mem.set_bytes(kSource, original);
      {
        io::FaultPlan plan = fault;
        plan.fail_at = n;
        io::FaultEnv env(mem, plan);
        auto r = compact::compact_image(env, kSource, {});
        ++runs;
        ASSERT_FALSE(r.has_value()) << "the injected failure went unnoticed";
      }
      // As it is, with no recovery: vhdkit reads it read-only, the same as before.
      EXPECT_TRUE(virtual_content(mem, kSource) == content) << "the content changed";
      std::string why;
      if (qemu_reads_as_before(dir, mem, img, &why)) {
        ++closed;
        continue;
      }
      // The window no write can close: the log holds a durable entry that was not (fully) applied.
      ++replay;
      EXPECT_TRUE(says_log_needs_replay(mem)) << "qemu refuses the file (" << why << ") but vhdkit sees no log";
      EXPECT_TRUE(log[n - 1].op == io::Op::Write || log[n - 1].op == io::Op::Flush)
          << "a log left open by a failed " << io::to_string(log[n - 1].op);
      recover(mem, kSource);
      EXPECT_TRUE(virtual_content(mem, kSource) == content) << "the recovery changed it";
      EXPECT_TRUE(qemu_reads_as_before(dir, mem, img, &why)) << "not recovered: " << why;
    }
  }
  std::cout << fmt::format(
      "VHDX compaction faults: {} I/O calls, {} failing runs; {} leave a file qemu and vhdkit open read-only, {} a "
      "durable log entry that a read-write open replays\n",
      log.size(), runs, closed, replay);
  EXPECT_GE(runs, 2 * 20u);
  // Only the calls of a transaction's apply-and-close window may leave a log open: a small part of the run.
  EXPECT_LT(replay * 4, runs) << "the log stays open across much of the run";
}

// A read the host refuses while an image is opened names the structure being read and its offset, with the exit
// status of a failed operation (not 2, "bad arguments"): EIO at each read of a read-only open, VHD and VHDX.
class HostReadErrors : public ::testing::TestWithParam<disk::Format> {};
constexpr uint64_t kDispatcherReads = 2;

TEST_P(HostReadErrors, NameTheStructureAndTheOffset) {
  TempDir dir;
  std::string ext = GetParam() == disk::Format::Vhdx ? ".vhdx" : ".vhd";
  std::string img = make_dynamic(dir, "a" + ext, "DZD", GetParam(), GetParam() == disk::Format::Vhdx ? kMiB : 2 * kMiB);
  const std::string path = "/mem/a" + ext;
  io::MemEnv mem;
  mem.set_bytes(path, read_file(img));
  io::FaultEnv counting(mem, {.counted = {io::Op::Read}});
  ASSERT_TRUE(image::open_image(counting, path).has_value());
  const uint64_t reads = counting.state().calls();
  ASSERT_GT(reads, 2u);
  for (uint64_t n = 1; n <= reads; ++n) {
    SCOPED_TRACE(fmt::format("read {} of {}", n, reads));
    io::FaultEnv env(mem, {.counted = {io::Op::Read}, .fail_at = n});
    auto d = image::open_image(env, path);
    ASSERT_FALSE(d.has_value());
    EXPECT_EQ(d.error().code(), ReturnCode::Failed) << d.error().what();
    // The first two reads are the dispatcher's (src/image: the signature at the start and the end of the file);
    // they name the range only. The format's own reads name the structure too.
    if (n <= kDispatcherReads) continue;
    EXPECT_NE(d.error().message().find("reading "), std::string::npos) << d.error().what();
    EXPECT_NE(d.error().message().find(" at offset "), std::string::npos) << d.error().what();
  }
  std::cout << fmt::format("{}: {} reads of an open failed in turn; the format's {} each name the structure\n",
                           disk::to_string(GetParam()), reads, reads - kDispatcherReads);
}

INSTANTIATE_TEST_SUITE_P(Formats, HostReadErrors, ::testing::Values(disk::Format::Vhd, disk::Format::Vhdx),
                         [](const auto& test) { return std::string(disk::to_string(test.param)); });

}  // namespace
}  // namespace vhdkit::testing
