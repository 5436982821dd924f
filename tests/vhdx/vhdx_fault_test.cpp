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
#include "io/testing/fault_env.h"
#include "io/testing/mem_env.h"
#include "vhdx_test_util.h"

namespace vhdkit::vhdx::testing {
namespace {

constexpr const char* kSource = "/mem/disk.vhdx";

struct Variant {
  io::Fault fault;
  io::Persistence persistence;
  io::FailedWrite failed_write;
  const char* name;
};
constexpr Variant kVariants[] = {
    {io::Fault::Eio, io::Persistence::Transient, io::FailedWrite::WritesNothing, "EIO"},
    {io::Fault::NoSpace, io::Persistence::Persistent, io::FailedWrite::WritesPrefix, "ENOSPC, half written"},
};

std::vector<std::byte> virtual_content(io::Env& env, const std::string& path, io::Access access) {
  disk::OpenOptions o;
  o.access = access;
  auto d = image::open_image(env, path, o);
  EXPECT_TRUE(d.has_value()) << d.error().what();
  if (!d) return {};
  std::vector<std::byte> out((*d)->virtual_size());
  auto s = (*d)->read(0, out);
  EXPECT_TRUE(s.has_value()) << s.error().what();
  return out;
}

std::vector<std::string> vhdkit_check(io::Env& env, const std::string& path) {
  auto d = image::open_image(env, path);
  if (!d) return {d.error().what()};
  return (*d)->check();
}

// qemu's verdict on the bytes: qemu-img check opens read-only; then its reading must equal the original's.
bool qemu_reads_as_before(const TempDir& dir, const std::vector<std::byte>& bytes, const std::string& raw,
                          std::string* why) {
  std::string state = dir.file("state.vhdx");
  write_file(state, bytes);
  RunResult check = run("qemu-img check -f vhdx " + q(state));
  if (check.status != 0) {
    *why = check.out + check.err;
    return false;
  }
  RunResult cmp = run("qemu-img compare -f vhdx -F raw " + q(state) + " " + q(raw));
  EXPECT_EQ(cmp.status, 0) << "qemu reads the failed run's file otherwise: " << cmp.out << cmp.err;
  return true;
}

TEST(VhdxCompactionFaults, EveryFailureLeavesAFileReadersOpenOrOneAReadWriteOpenRecovers) {
  TempDir dir;
  // 16 MiB, 1 MiB blocks: data, zero blocks to release, data behind them to move, so that the compaction
  // releases, moves and shrinks (several transactions).
  std::string img = dir.file("a.vhdx");
  run_ok("qemu-img create -q -f vhdx -o block_size=1M " + q(img) + " 16M");
  run_ok(
      "qemu-io -f vhdx -c 'write -P 0x61 0 1M' -c 'write -P 0 1M 2M' -c 'write -P 0x62 3M 1M' "
      "-c 'write -P 0 4M 1M' -c 'write -P 0x63 9M 64k' -c 'write -P 0x64 15M 1M' " +
      q(img) + " >/dev/null");
  std::string raw = dir.file("original.raw");
  run_ok("qemu-img convert -f vhdx -O raw " + q(img) + " " + q(raw));
  const std::vector<std::byte> original = read_file(img);

  io::MemEnv counting_mem;
  counting_mem.set_bytes(kSource, original);
  const std::vector<std::byte> content = virtual_content(counting_mem, kSource, io::Access::ReadOnly);
  io::FaultEnv counting(counting_mem);
  auto clean = compact::compact_image(counting, kSource, {});
  ASSERT_TRUE(clean.has_value()) << clean.error().what();
  ASSERT_GT(clean->blocks_released, 0u);
  ASSERT_GT(clean->blocks_moved, 0u);
  ASSERT_LT(clean->file_size_after, original.size());
  const auto log = counting.state().log();

  uint64_t runs = 0, closed = 0, replay = 0;
  for (const Variant& v : kVariants) {
    for (uint64_t n = 1; n <= log.size(); ++n) {
      SCOPED_TRACE(fmt::format("{} at call {} of {} ({} of {})", v.name, n, log.size(), io::to_string(log[n - 1].op),
                               log[n - 1].path));
      io::MemEnv mem;
      mem.set_bytes(kSource, original);
      {
        io::FaultEnv env(
            mem, {.fail_at = n, .fault = v.fault, .persistence = v.persistence, .failed_write = v.failed_write});
        auto r = compact::compact_image(env, kSource, {});
        ++runs;
        ASSERT_FALSE(r.has_value()) << "the injected failure went unnoticed";
      }
      // As it is, with no recovery: vhdkit reads it read-only, the same as before.
      EXPECT_TRUE(virtual_content(mem, kSource, io::Access::ReadOnly) == content) << "the content changed";
      std::string why;
      if (qemu_reads_as_before(dir, *mem.bytes(kSource), raw, &why)) {
        ++closed;
        continue;
      }
      // The window no write can close: the log holds a durable entry that was not (fully) applied.
      ++replay;
      std::vector<std::string> problems = vhdkit_check(mem, kSource);
      bool says_replay = false;
      for (const std::string& p : problems) says_replay = says_replay || p.find("the log needs replaying") == 0;
      EXPECT_TRUE(says_replay) << "qemu refuses the file (" << why << ") but vhdkit sees no log to replay";
      EXPECT_TRUE(log[n - 1].op == io::Op::Write || log[n - 1].op == io::Op::Flush)
          << "a log left open by a failed " << io::to_string(log[n - 1].op);
      EXPECT_TRUE(virtual_content(mem, kSource, io::Access::ReadWrite) == content) << "the recovery changed it";
      EXPECT_TRUE(qemu_reads_as_before(dir, *mem.bytes(kSource), raw, &why)) << "not recovered: " << why;
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

}  // namespace
}  // namespace vhdkit::vhdx::testing
