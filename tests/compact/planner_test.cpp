// SPDX-License-Identifier: Apache-2.0
// The planner alone: no I/O, hand-made layouts.
#include "compact/planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "test_support.h"

namespace vhdkit::compact {
namespace {

using vhdkit::testing::test_seed;

constexpr uint64_t kSlot = 1000;  // deliberately not a power of two
constexpr uint64_t kMeta = 3000;  // metadata occupies [0, 3000)

PlanInput layout(std::vector<std::pair<uint64_t, Verdict>> blocks) {
  PlanInput in;
  in.alignment = 1;
  in.trailer_size = 10;
  in.fixed = {{0, kMeta}};
  uint64_t end = kMeta;
  for (size_t i = 0; i < blocks.size(); ++i) {
    in.slots.push_back({i, blocks[i].first, kSlot, blocks[i].second});
    end = std::max(end, blocks[i].first + kSlot);
  }
  in.file_size = end + in.trailer_size;
  return in;
}

TEST(Planner, NothingToDoKeepsTheFile) {
  auto in = layout({{3000, Verdict::Keep}, {4000, Verdict::Keep}});
  Plan p = make_plan(in);
  EXPECT_TRUE(p.releases.empty());
  EXPECT_TRUE(p.moves.empty());
  EXPECT_EQ(p.new_file_size, in.file_size);
  EXPECT_FALSE(p.changes_anything(in.file_size));
}

TEST(Planner, ReleasedTailShrinksWithoutMoves) {
  auto in = layout({{3000, Verdict::Keep}, {4000, Verdict::Release}});
  Plan p = make_plan(in);
  ASSERT_EQ(p.releases.size(), 1u);
  EXPECT_TRUE(p.moves.empty());
  EXPECT_EQ(p.new_file_size, 4010u);
}

TEST(Planner, TailBlockMovesIntoLowestHole) {
  auto in = layout({{3000, Verdict::Release}, {4000, Verdict::Keep}, {5000, Verdict::Release}, {6000, Verdict::Keep}});
  Plan p = make_plan(in);
  EXPECT_EQ(p.releases.size(), 2u);
  ASSERT_EQ(p.moves.size(), 1u);
  EXPECT_EQ(p.moves[0], (Move{3, 6000, 3000, kSlot}));
  EXPECT_EQ(p.new_file_size, 5010u);
}

TEST(Planner, StopsWhenNoHoleLiesBelow) {
  // Holes at 3000 and 5000; blocks at 4000, 6000, 7000. 7000 -> 3000, 6000 -> 5000, 4000 stays.
  auto in = layout({{3000, Verdict::Release},
                    {4000, Verdict::Keep},
                    {5000, Verdict::Release},
                    {6000, Verdict::Keep},
                    {7000, Verdict::Keep}});
  Plan p = make_plan(in);
  ASSERT_EQ(p.moves.size(), 2u);
  EXPECT_EQ(p.moves[0], (Move{4, 7000, 3000, kSlot}));
  EXPECT_EQ(p.moves[1], (Move{3, 6000, 5000, kSlot}));
  EXPECT_EQ(p.new_file_size, 6010u);
}

TEST(Planner, MetadataBetweenBlocksNeverMovesAndIsNeverOverwritten) {
  auto in = layout({{3000, Verdict::Release}, {5000, Verdict::Keep}});
  in.fixed.push_back({3500, 100});   // a parent locator inside the released slot
  in.fixed.push_back({4000, 1000});  // and one after it
  Plan p = make_plan(in);
  EXPECT_TRUE(p.moves.empty());  // [3000,3500) and [3600,4000) are too small for a slot
  EXPECT_EQ(p.new_file_size, in.file_size);
}

TEST(Planner, GapAfterMetadataIsUsedAndAlignmentHolds) {
  PlanInput in;
  in.alignment = 4096;
  in.trailer_size = 512;
  in.fixed = {{0, 1536}};
  in.slots = {{0, 8192, 4096, Verdict::Release}, {1, 16384, 4096, Verdict::Keep}};
  in.file_size = 16384 + 4096 + 512;
  Plan p = make_plan(in);
  ASSERT_EQ(p.moves.size(), 1u);
  EXPECT_EQ(p.moves[0].to, 4096u);  // the gap [1536, 8192) holds one aligned slot at 4096
  EXPECT_EQ(p.new_file_size, 8192u + 512);
}

TEST(Planner, SlotAlignmentFollowsTheWriter) {
  EXPECT_EQ(slot_alignment({{0, 4096, 512, Verdict::Keep}, {1, 8192, 512, Verdict::Keep}}), 4096u);
  EXPECT_EQ(slot_alignment({{0, 1536, 512, Verdict::Keep}, {1, 8192, 512, Verdict::Keep}}), 512u);
  EXPECT_EQ(slot_alignment({}), 4096u);
}

// VHDX: payload blocks and 1 MiB sector bitmap blocks. A small slot takes a hole too small for a large one;
// a large one skips it for the next hole it fits.
TEST(Planner, SlotsOfTwoSizesEachTakeTheLowestHoleTheyFit) {
  PlanInput in;
  in.alignment = 100;
  in.fixed = {{0, 1000}};
  in.slots = {{0, 1000, 100, Verdict::Release}, {1, 1100, 400, Verdict::Keep}, {2, 1500, 400, Verdict::Release},
              {3, 1900, 400, Verdict::Keep},    {4, 2300, 400, Verdict::Keep}, {9, 2700, 100, Verdict::Keep}};
  in.file_size = 2800;
  Plan p = make_plan(in);
  // Holes: [1000, 1100) and [1500, 1900). The bitmap slot at 2700 takes the small one; block 4 the large.
  ASSERT_EQ(p.moves.size(), 2u);
  EXPECT_EQ(p.moves[0], (Move{9, 2700, 1000, 100}));
  EXPECT_EQ(p.moves[1], (Move{4, 2300, 1500, 400}));
  EXPECT_EQ(p.new_file_size, 2300u);
}

// Random layouts: moves go strictly downward into space no kept block used before, never overlap each
// other, and the resulting layout fits below the new end.
TEST(Planner, RandomLayoutsKeepTheInvariants) {
  std::mt19937_64 rng(test_seed(42));
  for (int round = 0; round < 2000; ++round) {
    size_t n = rng() % 40;
    std::vector<std::pair<uint64_t, Verdict>> blocks;
    uint64_t at = kMeta + (rng() % 3) * kSlot;
    for (size_t i = 0; i < n; ++i) {
      blocks.push_back({at, rng() % 2 ? Verdict::Keep : Verdict::Release});
      at += kSlot * (1 + (rng() % 4 == 0 ? rng() % 3 : 0));
    }
    std::shuffle(blocks.begin(), blocks.end(), rng);
    PlanInput in = layout(blocks);
    Plan p = make_plan(in);

    std::vector<Extent> kept_before;
    std::map<uint64_t, uint64_t> final_at;
    for (const Slot& s : in.slots) {
      if (s.verdict == Verdict::Keep) {
        kept_before.push_back({s.offset, kSlot});
        final_at[s.block] = s.offset;
      }
    }
    EXPECT_EQ(p.blocks_kept, kept_before.size());
    for (const Move& m : p.moves) {
      ASSERT_LE(m.to + kSlot, m.from);
      ASSERT_GE(m.to, kMeta);
      for (const Extent& k : kept_before) ASSERT_TRUE(m.to + kSlot <= k.offset || k.end() <= m.to);
      final_at[m.block] = m.to;
    }
    std::vector<uint64_t> finals;
    uint64_t end = kMeta;
    for (auto [b, off] : final_at) {
      finals.push_back(off);
      end = std::max(end, off + kSlot);
    }
    std::sort(finals.begin(), finals.end());
    for (size_t i = 1; i < finals.size(); ++i) ASSERT_LE(finals[i - 1] + kSlot, finals[i]);
    EXPECT_EQ(p.new_file_size, std::min(end + 10, in.file_size));
    // Every slot lies on the kSlot grid here, so the result is dense: no hole is left below the end.
    EXPECT_EQ(end, kMeta + finals.size() * kSlot) << "round " << round;
    // Running the planner again on the result finds nothing more to do.
    PlanInput again = in;
    again.slots.clear();
    for (auto [b, off] : final_at) again.slots.push_back({b, off, kSlot, Verdict::Keep});
    again.file_size = p.new_file_size;
    Plan p2 = make_plan(again);
    EXPECT_TRUE(p2.moves.empty()) << "round " << round;
    EXPECT_EQ(p2.new_file_size, p.new_file_size);
  }
}

// Random layouts of two slot sizes (VHDX: blocks of 1-256 MiB and 1 MiB sector bitmaps): moves go strictly
// downward into space that neither metadata nor a kept slot used before, never overlap each other, and
// everything ends up below the new end.
TEST(Planner, RandomLayoutsOfTwoSlotSizesKeepTheInvariants) {
  std::mt19937_64 rng(test_seed(7));
  for (int round = 0; round < 2000; ++round) {
    const uint64_t big = 100 * (1 + rng() % 8), small = 100;
    PlanInput in;
    in.alignment = 100;
    in.fixed = {{0, 1000}, {1000 + 100 * (rng() % 30), 100}};  // the second: metadata among the blocks
    uint64_t at = 1000;
    for (uint64_t i = 0, n = rng() % 30; i < n; ++i) {
      uint64_t length = rng() % 5 == 0 ? small : big;
      at += 100 * (rng() % 3);
      bool hits_fixed = false;
      for (const Extent& f : in.fixed) hits_fixed = hits_fixed || (at < f.end() && f.offset < at + length);
      if (hits_fixed) at = in.fixed[1].end();
      in.slots.push_back({i, at, length, rng() % 2 ? Verdict::Keep : Verdict::Release});
      at += length;
    }
    in.file_size = std::max<uint64_t>(at, in.fixed[1].end());
    Plan p = make_plan(in);

    std::vector<Extent> before = in.fixed;
    std::map<uint64_t, Extent> final_at;
    for (const Slot& s : in.slots) {
      if (s.verdict == Verdict::Release) continue;
      before.push_back({s.offset, s.length});
      final_at[s.block] = {s.offset, s.length};
    }
    std::vector<Extent> destinations;
    for (const Move& m : p.moves) {
      ASSERT_EQ(m.to % 100, 0u);
      ASSERT_LE(m.to + m.length, m.from) << "round " << round;
      for (const Extent& e : before) ASSERT_TRUE(m.to + m.length <= e.offset || e.end() <= m.to) << "round " << round;
      for (const Extent& d : destinations) ASSERT_TRUE(m.to + m.length <= d.offset || d.end() <= m.to);
      destinations.push_back({m.to, m.length});
      final_at[m.block] = {m.to, m.length};
    }
    uint64_t end = 0;
    for (const Extent& f : in.fixed) end = std::max(end, f.end());
    for (const auto& [b, e] : final_at) end = std::max(end, e.end());
    EXPECT_EQ(p.new_file_size, std::min(end, in.file_size)) << "round " << round;
  }
}

}  // namespace
}  // namespace vhdkit::compact
