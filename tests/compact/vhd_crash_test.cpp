// The crash harness: power cut after every write and every flush of a compaction, in every state the
// crash file can produce (unflushed writes dropped, kept, prefixes, subsets, torn sectors). Each state must
// open, check clean and read the same virtual content as the original; running again must finish the work.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>

#include "compact/compact.h"
#include "compact/open_compactable.h"
#include "core/bytes.h"
#include "images.h"
#include "io/crash_env.h"

namespace vhdkit::testing {
namespace {

const std::string kPath = "/mem/disk.vhd";

// The virtual content of a dynamic VHD as qemu's vpc driver reads it (allocated blocks: their data;
// others: zeros). Kept independent of the code under test on purpose.
std::vector<std::byte> dynamic_vhd_content(const std::vector<std::byte>& f) {
  auto be32 = [&](uint64_t at) { return load_be<uint32_t>(f.data() + at); };
  auto be64 = [&](uint64_t at) { return load_be<uint64_t>(f.data() + at); };
  const uint64_t footer = f.size() - 512;
  EXPECT_EQ(std::memcmp(f.data() + footer, "conectix", 8), 0);
  const uint64_t size = be64(footer + 48), header = be64(footer + 16);
  const uint64_t bat = be64(header + 16), entries = be32(header + 28), block = be32(header + 32);
  const uint64_t bitmap = round_up(block / 512 / 8, 512);
  std::vector<std::byte> out(size);
  for (uint64_t b = 0; b < entries && b * block < size; ++b) {
    uint32_t e = be32(bat + 4 * b);
    if (e == 0xFFFFFFFF) continue;
    uint64_t n = std::min(block, size - b * block);
    uint64_t at = uint64_t{e} * 512 + bitmap;
    EXPECT_LE(at + n, footer) << "block " << b;
    if (at + n > footer) return {};
    std::memcpy(out.data() + b * block, f.data() + at, n);
  }
  return out;
}

void crash_matrix(const std::string& name, const std::string& image_file) {
  TempDir dir;
  const auto bytes = read_file(image_file);
  const auto content = dynamic_vhd_content(bytes);
  ASSERT_FALSE(content.empty());

  // The result of an undisturbed run.
  uint64_t final_size = 0;
  {
    io::MemEnv mem;
    mem.set_bytes(kPath, bytes);
    auto r = compact::compact_image(mem, kPath, {});
    ASSERT_TRUE(r.has_value()) << r.error().what();
    final_size = r->file_size_after;
    ASSERT_LT(final_size, bytes.size());
  }

  uint64_t referee_runs = 0, states_seen = 0, reruns = 0;
  auto coverage = io::run_crash_matrix(
      [&](io::CrashEnv& env) { env.set_bytes(kPath, bytes); },
      [&](io::Env& env) { (void)compact::compact_image(env, kPath, {}); }, kPath,
      [&](io::MemEnv& after, const io::CrashPoint& point) {
        SCOPED_TRACE(point.describe());
        const auto state = *after.bytes(kPath);
        // Opens and checks clean: footer, header, BAT inside the file, no block overlapping another or the
        // metadata (what the compaction engine itself refuses to touch).
        auto image = compact::open_compactable(after, kPath, io::Access::ReadOnly);
        ASSERT_TRUE(image.has_value()) << image.error().what();
        ASSERT_TRUE(dynamic_vhd_content(state) == content) << "virtual content changed";
        // The real tools on a sample of the states.
        ++states_seen;
        if (states_seen % 25 == 1) {
          std::string file = dir.file("state.vhd");
          write_file(file, state);
          expect_same_content(image_file, file);
          expect_tools_accept(file);
          ++referee_runs;
        }
        // Running again finishes the work (on every third state: the run is the costly part of a check).
        if (states_seen % 3 != 1) return;
        ++reruns;
        auto again = compact::compact_image(after, kPath, {});
        ASSERT_TRUE(again.has_value()) << again.error().what();
        const auto done = *after.bytes(kPath);
        EXPECT_EQ(done.size(), final_size);
        ASSERT_TRUE(dynamic_vhd_content(done) == content) << "virtual content changed by the rerun";
      });
  std::cout << fmt::format("crash harness [{}]: {} mutating operations, {} cut points, {} crash states "
                           "checked ({} also by qemu-img compare and vhdiinfo, {} compacted again to the end)\n",
                           name, coverage.total_ops, coverage.cut_points, coverage.states, referee_runs, reruns);
  EXPECT_GE(coverage.total_ops, 8u);
  EXPECT_GE(coverage.states, coverage.cut_points);
}

TEST(VhdCompactCrash, InterleavedZeroAndDataBlocks) {
  TempDir dir;
  crash_matrix("dynamic, interleaved", make_dynamic_vhd(dir, "a.vhd", "ZDZDDZPZDZD"));
}

TEST(VhdCompactCrash, LastBlockMustMove) {
  TempDir dir;
  crash_matrix("dynamic, last block moves", make_dynamic_vhd(dir, "a.vhd", "ZZDDZD"));
}

TEST(VhdCompactCrash, BlocksAllocatedOutOfOrder) {
  TempDir dir;
  crash_matrix("dynamic, shuffled", make_shuffled_vhd(dir, "a.vhd", "DZZDZDDZ", {7, 3, 0, 5, 1, 6, 2, 4}));
}

}  // namespace
}  // namespace vhdkit::testing
