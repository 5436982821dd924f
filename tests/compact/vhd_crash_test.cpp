// The crash harness: power cut after every write and every flush of a compaction, in every state the
// crash file can produce (unflushed writes dropped, kept, prefixes, subsets, torn sectors). Each state must
// open, check clean and read the same virtual content as the original; running again must finish the work.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "compact/compact.h"
#include "compact/open_compactable.h"
#include "images.h"
#include "io/crash_env.h"

namespace vhdkit::testing {
namespace {

// The files a crash test starts from (a differencing disk brings its parent), and the one compacted.
struct CrashSetup {
  std::vector<std::pair<std::string, std::vector<std::byte>>> files;
  std::string target;
  bool qemu_reads_it = true;  // qemu's vpc driver ignores parents: no qemu-img compare for children
};

CrashSetup single(const std::string& image_file) { return {{{image_file, read_file(image_file)}}, image_file}; }

void crash_matrix(const std::string& name, const CrashSetup& setup) {
  TempDir dir;
  const std::string& path = setup.target;
  auto load = [&](auto& env) {
    for (const auto& [p, b] : setup.files) env.set_bytes(p, b);
  };
  io::MemEnv original;
  load(original);
  const auto content = virtual_content(original, path);
  ASSERT_FALSE(content.empty());
  ASSERT_TRUE(our_check(original, path).empty());

  // The result of an undisturbed run.
  uint64_t final_size = 0;
  {
    io::MemEnv mem;
    load(mem);
    auto r = compact::compact_image(mem, path, {});
    ASSERT_TRUE(r.has_value()) << r.error().what();
    final_size = r->file_size_after;
    ASSERT_LT(final_size, r->file_size_before);
  }

  uint64_t referee_runs = 0, states_seen = 0, reruns = 0;
  auto coverage = io::run_crash_matrix(
      load, [&](io::Env& env) { (void)compact::compact_image(env, path, {}); }, path,
      [&](io::MemEnv& after, const io::CrashPoint& point) {
        SCOPED_TRACE(point.describe());
        ++states_seen;
        // Opens and checks clean, and reads the same virtual content.
        auto problems = our_check(after, path);
        ASSERT_TRUE(problems.empty()) << problems.front();
        ASSERT_TRUE(virtual_content(after, path) == content) << "virtual content changed";
        // The real tools on a sample of the states.
        if (states_seen % 25 == 1) {
          std::string file = dir.file("state.vhd");
          write_file(file, *after.bytes(path));
          if (setup.qemu_reads_it) expect_same_content(setup.files.front().first, file);
          expect_tools_accept(file);
          ++referee_runs;
        }
        // Running again finishes the work (on every third state: the run is the costly part of a check).
        if (states_seen % 3 != 1) return;
        ++reruns;
        auto again = compact::compact_image(after, path, {});
        ASSERT_TRUE(again.has_value()) << again.error().what();
        EXPECT_EQ(after.bytes(path)->size(), final_size);
        ASSERT_TRUE(virtual_content(after, path) == content) << "virtual content changed by the rerun";
        EXPECT_TRUE(our_check(after, path).empty());
      });
  std::cout << fmt::format("crash harness [{}]: {} mutating operations, {} cut points, {} crash states "
                           "checked ({} also by {}vhdiinfo, {} compacted again to the end)\n",
                           name, coverage.total_ops, coverage.cut_points, coverage.states, referee_runs,
                           setup.qemu_reads_it ? "qemu-img compare and " : "", reruns);
  EXPECT_GE(coverage.total_ops, 8u);
  EXPECT_GE(coverage.states, coverage.cut_points);
}

TEST(VhdCompactCrash, InterleavedZeroAndDataBlocks) {
  TempDir dir;
  crash_matrix("dynamic, interleaved", single(make_dynamic_vhd(dir, "a.vhd", "ZDZDDZPZDZD")));
}

TEST(VhdCompactCrash, LastBlockMustMove) {
  TempDir dir;
  crash_matrix("dynamic, last block moves", single(make_dynamic_vhd(dir, "a.vhd", "ZZDDZD")));
}

TEST(VhdCompactCrash, BlocksAllocatedOutOfOrder) {
  TempDir dir;
  crash_matrix("dynamic, shuffled",
               single(make_shuffled_vhd(dir, "a.vhd", "DZZDZDDZ", {7, 3, 0, 5, 1, 6, 2, 4})));
}

TEST(VhdCompactCrash, DifferencingChild) {
  TempDir dir;
  DifferencingPair pair = make_differencing_pair(dir);
  CrashSetup setup{{{pair.parent, read_file(pair.parent)}, {pair.child, read_file(pair.child)}}, pair.child, false};
  crash_matrix("differencing", setup);
}

}  // namespace
}  // namespace vhdkit::testing
