// SPDX-License-Identifier: Apache-2.0
// CrashEnv: what it records, every kind of crash state (prefix, subset, torn sectors, truncate, punch),
// the power cut after N operations, the representative enumeration and the harness loop.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>

#include "io/atomic_output.h"
#include "io/testing/crash_env.h"

namespace vhdkit::io {
namespace {

const std::string kPath = "/mem/disk.img";

std::vector<std::byte> filled(size_t n, char c) { return std::vector<std::byte>(n, std::byte(c)); }
std::vector<std::byte> text(std::string_view s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}
// The bytes of [from, to) of an image as a string of their characters, for readable expectations.
std::string chars(const std::vector<std::byte>& v, size_t from, size_t to) {
  return std::string(reinterpret_cast<const char*>(v.data()) + from, to - from);
}
std::vector<std::byte> image(const CrashEnv& env, const Result<CrashState>& state) {
  EXPECT_TRUE(state) << state.error().what();
  auto img = env.image(kPath, *state);
  EXPECT_TRUE(img) << img.error().what();
  return img ? *img : std::vector<std::byte>{};
}

TEST(CrashEnv, RecordsWritesUntilAFlushMakesThemDurable) {
  CrashEnv env;
  env.set_bytes(kPath, filled(1024, '.'));
  auto f = *env.open(kPath, Access::ReadWrite);
  ASSERT_TRUE(f->write_at(0, text("AAAA")));
  ASSERT_TRUE(f->write_at(600, text("BBBB")));
  EXPECT_EQ(env.pending(kPath).size(), 2u);
  EXPECT_EQ(*env.durable_bytes(kPath), filled(1024, '.'));
  EXPECT_EQ(chars(*env.bytes(kPath), 0, 4), "AAAA") << "the program sees its writes at once";
  ASSERT_TRUE(f->flush());
  EXPECT_TRUE(env.pending(kPath).empty());
  EXPECT_EQ(env.durable_bytes(kPath), env.bytes(kPath));
  ASSERT_TRUE(f->truncate(512));
  ASSERT_TRUE(f->punch_hole(0, 2));
  auto ops = env.pending(kPath);
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].kind, PendingOp::Kind::Truncate);
  EXPECT_EQ(ops[1].kind, PendingOp::Kind::Punch);
  EXPECT_EQ(env.mutating_ops(), 5u);
}

TEST(CrashEnv, DurableAllPrefixAndSubsetStates) {
  CrashEnv env;
  env.set_bytes(kPath, filled(16, '.'));
  auto f = *env.open(kPath, Access::ReadWrite);
  ASSERT_TRUE(f->write_at(0, text("a")));
  ASSERT_TRUE(f->write_at(1, text("b")));
  ASSERT_TRUE(f->write_at(2, text("c")));
  ASSERT_TRUE(f->write_at(0, text("d")));  // overwrites the first: order matters

  EXPECT_EQ(chars(image(env, env.durable_only(kPath)), 0, 4), "....");
  EXPECT_EQ(chars(image(env, env.all_pending(kPath)), 0, 4), "dbc.");
  EXPECT_EQ(chars(image(env, env.prefix(kPath, 2)), 0, 4), "ab..");
  EXPECT_EQ(chars(image(env, env.subset(kPath, {false, true, false, true})), 0, 4), "db..");
  EXPECT_EQ(chars(image(env, env.subset(kPath, {true, false, true, false})), 0, 4), "a.c.");
  EXPECT_EQ(env.random_subset(kPath, 7), env.random_subset(kPath, 7)) << "a seed gives the same subset";

  auto too_long = env.prefix(kPath, 5);
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code(), ReturnCode::InvalidParameter);
  EXPECT_FALSE(env.subset(kPath, {true}));
  EXPECT_TRUE(env.torn(kPath, 0, {true})) << "a one-byte write touches one sector";
  EXPECT_FALSE(env.torn(kPath, 0, {true, true}));
}

TEST(CrashEnv, TornWritesAreSectorGranular) {
  CrashEnv env;
  env.set_bytes(kPath, filled(2048, '.'));
  auto f = *env.open(kPath, Access::ReadWrite);
  // 1000 bytes at 100 touch sectors 0, 1 and 2 (partly 0 and 2).
  ASSERT_TRUE(f->write_at(100, filled(1000, 'N')));
  ASSERT_EQ(env.pending(kPath)[0].sectors(), 3u);
  auto img = image(env, env.torn(kPath, 0, {true, false, true}));
  ASSERT_EQ(img.size(), 2048u);
  EXPECT_EQ(chars(img, 0, 100), std::string(100, '.'));
  EXPECT_EQ(chars(img, 100, 512), std::string(412, 'N'));
  EXPECT_EQ(chars(img, 512, 1024), std::string(512, '.')) << "sector 1 kept its old bytes";
  EXPECT_EQ(chars(img, 1024, 1100), std::string(76, 'N'));
  EXPECT_EQ(chars(img, 1100, 2048), std::string(948, '.'));
  EXPECT_FALSE(env.torn(kPath, 0, {true, false})) << "the mask must cover each sector of the write";
}

TEST(CrashEnv, ATornWritePastTheEndExtendsOnlyToItsLastNewSector) {
  CrashEnv env;
  env.set_bytes(kPath, filled(512, '.'));
  auto f = *env.open(kPath, Access::ReadWrite);
  ASSERT_TRUE(f->write_at(512, filled(1536, 'N')));  // sectors 1, 2, 3 (all past the old end)
  EXPECT_EQ(image(env, env.torn(kPath, 0, {true, false, false})).size(), 1024u);
  auto img = image(env, env.torn(kPath, 0, {false, true, false}));
  ASSERT_EQ(img.size(), 1536u);
  EXPECT_EQ(chars(img, 512, 1024), std::string(512, '\0')) << "a sector that did not land past the end is zeros";
  EXPECT_EQ(chars(img, 1024, 1536), std::string(512, 'N'));
  EXPECT_EQ(image(env, env.torn(kPath, 0, {false, false, false})).size(), 512u);
}

TEST(CrashEnv, APendingTruncateMayOrMayNotHaveHappened) {
  CrashEnv env;
  env.set_bytes(kPath, filled(8192, 'o'));
  auto f = *env.open(kPath, Access::ReadWrite);
  ASSERT_TRUE(f->truncate(1000));
  ASSERT_TRUE(f->write_at(4000, text("x")));
  auto neither = image(env, env.durable_only(kPath));
  EXPECT_EQ(neither.size(), 8192u);
  auto only_write = image(env, env.subset(kPath, {false, true}));
  ASSERT_EQ(only_write.size(), 8192u);
  EXPECT_EQ(chars(only_write, 1000, 4000), std::string(3000, 'o')) << "no truncate: the old bytes stay";
  EXPECT_EQ(chars(only_write, 4000, 4002), "xo");
  auto only_truncate = image(env, env.prefix(kPath, 1));
  EXPECT_EQ(only_truncate.size(), 1000u);
  auto both = image(env, env.all_pending(kPath));
  ASSERT_EQ(both.size(), 4001u);
  EXPECT_EQ(chars(both, 1000, 4000), std::string(3000, '\0')) << "shrunk, then extended: the gap is zeros";
  EXPECT_EQ(both, *env.bytes(kPath));
}

TEST(CrashEnv, APendingPunchMayOrMayNotHaveHappened) {
  CrashEnv env;
  env.set_bytes(kPath, filled(8192, 'o'));
  auto f = *env.open(kPath, Access::ReadWrite);
  ASSERT_TRUE(f->punch_hole(4096, 8192));
  EXPECT_EQ(image(env, env.durable_only(kPath)), filled(8192, 'o'));
  auto punched = image(env, env.all_pending(kPath));
  ASSERT_EQ(punched.size(), 8192u) << "a punch never changes the size";
  EXPECT_EQ(chars(punched, 4095, 4097), std::string("o\0", 2));
}

TEST(CrashEnv, CreateOrTruncateIsAPendingTruncateAndRenameKeepsTheJournal) {
  CrashEnv env;
  env.set_bytes(kPath, filled(100, 'o'));
  auto f = *env.open(kPath, Access::ReadWrite, Creation::CreateOrTruncate);
  ASSERT_TRUE(f->write_at(0, text("new")));
  EXPECT_EQ(image(env, env.durable_only(kPath)).size(), 100u);
  EXPECT_EQ(chars(image(env, env.prefix(kPath, 1)), 0, 0), "");
  EXPECT_EQ(image(env, env.prefix(kPath, 1)).size(), 0u);
  ASSERT_TRUE(env.rename(kPath, "/mem/renamed"));
  EXPECT_EQ(env.pending("/mem/renamed").size(), 2u);
  EXPECT_FALSE(env.bytes(kPath));
  ASSERT_TRUE(f->flush()) << "an open file follows its rename, as an fd follows its inode";
  EXPECT_EQ(chars(*env.durable_bytes("/mem/renamed"), 0, 3), "new");
}

TEST(CrashEnv, PowerCutAfterTheNthOperationStopsEverything) {
  CrashEnv env;
  env.set_bytes(kPath, filled(4096, '.'));
  env.set_bytes("/mem/other", filled(10, 'o'));
  env.cut_power_after(3);
  auto f = *env.open(kPath, Access::ReadWrite);
  auto other = *env.open("/mem/other", Access::ReadWrite);
  ASSERT_TRUE(f->write_at(0, text("1")));  // op 1
  ASSERT_TRUE(f->flush());                 // op 2
  ASSERT_TRUE(f->write_at(1, text("2")));  // op 3: the last one that happens
  EXPECT_TRUE(env.power_is_off());
  auto s = f->write_at(2, text("3"));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("power is off"), std::string::npos) << s.error().what();
  std::vector<std::byte> buf(1);
  EXPECT_FALSE(f->read_at(0, buf));
  EXPECT_FALSE(other->flush());
  EXPECT_FALSE(env.open(kPath, Access::ReadOnly));
  EXPECT_FALSE(env.rename(kPath, "/mem/x"));
  EXPECT_EQ(env.mutating_ops(), 3u);
  ASSERT_EQ(env.pending(kPath).size(), 1u);
  EXPECT_EQ(chars(image(env, env.durable_only(kPath)), 0, 3), "1..");
  EXPECT_EQ(chars(image(env, env.all_pending(kPath)), 0, 3), "12.");

  auto after = env.restart(kPath, env.all_pending(kPath));
  ASSERT_TRUE(after);
  EXPECT_EQ(chars(*(*after)->bytes(kPath), 0, 3), "12.");
  EXPECT_EQ(*(*after)->bytes("/mem/other"), filled(10, 'o'));
  auto reopened = (*after)->open(kPath, Access::ReadWrite);
  ASSERT_TRUE(reopened);
  EXPECT_TRUE((*reopened)->write_at(0, text("z"))) << "the restarted world works normally";
}

TEST(CrashEnv, RepresentativeStatesCoverEveryKindWithoutRepeats) {
  CrashEnv env;
  env.set_bytes(kPath, filled(8192, '.'));
  auto f = *env.open(kPath, Access::ReadWrite);
  ASSERT_TRUE(f->write_at(0, filled(2048, 'A')));    // 4 sectors
  ASSERT_TRUE(f->write_at(4096, filled(100, 'B')));  // 1 sector
  ASSERT_TRUE(f->truncate(6000));
  ASSERT_TRUE(f->write_at(5000, filled(1500, 'C')));  // sectors 9..12: 4 sectors, the last write
  auto states = env.representative_states(kPath);
  // 2^4 subsets (they include none, all and the prefixes); write 0: 4 torn variants; write 3: 4 + first-k for
  // k = 1..3, of which "first 1" and "first 3" repeat "only first" and "all but last".
  EXPECT_EQ(states.size(), 16u + 4 + 4 + 1);
  std::set<std::tuple<std::vector<bool>, std::optional<size_t>, std::vector<bool>>> distinct;
  std::set<CrashState::Kind> kinds;
  for (const auto& s : states) {
    distinct.insert({s.applied, s.torn, s.torn_sectors});
    kinds.insert(s.kind);
    EXPECT_TRUE(env.image(kPath, s)) << s.describe();
  }
  EXPECT_EQ(distinct.size(), states.size());
  EXPECT_EQ(kinds.size(), 5u) << "durable, all, prefix, subset and torn all appear";
  EXPECT_EQ(states[0].kind, CrashState::Kind::DurableOnly);
  EXPECT_EQ(states[1].kind, CrashState::Kind::AllPending);
  EXPECT_EQ(states[1].describe(), "all 4 pending");
}

TEST(CrashEnv, RepresentativeStatesStayBoundedWithManyPendingWrites) {
  CrashEnv env;
  env.set_bytes(kPath, {});
  auto f = *env.open(kPath, Access::ReadWrite);
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(f->write_at(static_cast<uint64_t>(i) * 65536, filled(65536, 'x')));
  EnumerationOptions options;
  auto states = env.representative_states(kPath, options);
  // none + all + 39 prefixes + 8 random + 40 writes x 4 torn + 16 first-k of the last write.
  EXPECT_LE(states.size(), 2 + 39 + options.random_subsets + 40 * 4 + options.max_torn_prefixes);
  EXPECT_GE(states.size(), 2 + 39 + 40 * 4u);
}

// The harness loop on a toy copy-on-write update: new data goes to a fresh place, is flushed, and only then
// does one sector (the "pointer") switch to it. Every crash state must read either the old or the new
// record. The same workload without the flush in the middle must be caught.
enum class Order { FlushBeforePointer, NoFlush };

void toy_setup(CrashEnv& env) {
  std::vector<std::byte> img(4096, std::byte{0});
  std::memcpy(img.data(), "1", 1);                                    // pointer: record in slot 1
  std::fill(img.begin() + 1024, img.begin() + 2048, std::byte{'o'});  // slot 1: the old record
  env.set_bytes(kPath, img);
}

void toy_update(Env& env, Order order) {
  auto f = env.open(kPath, Access::ReadWrite);
  if (!f) return;
  if (!(*f)->write_at(2048, filled(1024, 'n'))) return;  // slot 2: the new record, two sectors
  if (order == Order::FlushBeforePointer && !(*f)->flush()) return;
  if (!(*f)->write_at(0, text("2"))) return;
  (void)(*f)->flush();
}

// Reads the record the pointer names; it must be all 'o' or all 'n'.
std::string toy_record(MemEnv& env) {
  auto img = *env.bytes(kPath);
  size_t slot = static_cast<size_t>(static_cast<char>(img[0]) - '0');
  std::string rec = chars(img, slot * 1024, slot * 1024 + 1024);
  if (rec == std::string(1024, 'o') || rec == std::string(1024, 'n')) return rec.substr(0, 1);
  return "torn";
}

TEST(CrashEnv, HarnessProvesACorrectWriteOrderAndCatchesAWrongOne) {
  uint64_t bad = 0;
  auto good = run_crash_matrix(
      toy_setup, [](Env& env) { toy_update(env, Order::FlushBeforePointer); }, kPath,
      [&](MemEnv& after, const CrashPoint& point) { EXPECT_NE(toy_record(after), "torn") << point.describe(); });
  EXPECT_EQ(good.total_ops, 4u);
  EXPECT_EQ(good.cut_points, 4u);
  EXPECT_GE(good.states, 4u + 4);

  auto wrong = run_crash_matrix(
      toy_setup, [](Env& env) { toy_update(env, Order::NoFlush); }, kPath,
      [&](MemEnv& after, const CrashPoint&) { bad += toy_record(after) == "torn"; });
  EXPECT_GT(bad, 0u) << "pointer written before its data was durable: some state must show a torn record";
  EXPECT_GT(wrong.states, 0u);
}

}  // namespace
}  // namespace vhdkit::io

namespace vhdkit::io {
namespace {

TEST(CrashEnvDirectories, UnsyncedCreateAndRenameMayBeLost) {
  CrashEnv env;
  env.set_bytes("/d/target", text("old"));
  env.cut_power_after(4);
  auto tmp = *env.open("/d/tmp", Access::ReadWrite, Creation::CreateNew);  // op 1
  ASSERT_TRUE(tmp->write_at(0, text("new")));                              // op 2
  ASSERT_TRUE(tmp->flush());                                               // op 3
  ASSERT_TRUE(env.rename("/d/tmp", "/d/target"));                          // op 4
  EXPECT_FALSE(env.sync_dir("/d")) << "the power is off";
  EXPECT_EQ(env.pending_directory_ops(), (std::vector<std::string>{"create /d/tmp", "rename /d/tmp -> /d/target"}));

  auto world = [&](size_t dir_ops) {
    auto state = env.with_directory_ops(env.all_pending("/d/target"), dir_ops);
    EXPECT_TRUE(state);
    auto after = env.restart("/d/target", *state);
    EXPECT_TRUE(after);
    std::map<std::string, std::string> files;
    for (const auto& p : (*after)->paths()) files[p] = chars(*(*after)->bytes(p), 0, (*after)->bytes(p)->size());
    return files;
  };
  using Files = std::map<std::string, std::string>;
  EXPECT_EQ(world(0), (Files{{"/d/target", "old"}}));
  EXPECT_EQ(world(1), (Files{{"/d/target", "old"}, {"/d/tmp", "new"}}));
  EXPECT_EQ(world(2), (Files{{"/d/target", "new"}}));
  EXPECT_FALSE(env.with_directory_ops(env.all_pending("/d/target"), 3));

  auto states = env.representative_states("/d/target");
  std::set<size_t> dir_prefixes;
  for (const auto& s : states) dir_prefixes.insert(s.directory_ops_applied);
  EXPECT_EQ(dir_prefixes, (std::set<size_t>{0, 1, 2}));
  EXPECT_NE(env.durable_only("/d/target").describe().find("0 of 2 unsynced directory operations"), std::string::npos);
}

TEST(CrashEnvDirectories, SyncDirMakesThemDurable) {
  CrashEnv env;
  auto f = *env.open("/d/a", Access::ReadWrite, Creation::CreateNew);
  ASSERT_TRUE(f->write_at(0, text("a")));
  ASSERT_TRUE(env.sync_dir("/d"));
  EXPECT_TRUE(env.pending_directory_ops().empty());
  ASSERT_TRUE(env.remove("/d/a"));
  auto f2 = *env.open("/d/b", Access::ReadWrite, Creation::CreateNew);
  auto after = env.restart("/d/b", env.durable_only("/d/b"));
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)->paths(), std::vector<std::string>{"/d/a"}) << "the remove and the create were not synced";
  EXPECT_EQ((*after)->bytes("/d/a")->size(), 0u) << "its name is durable, its unflushed content is not";
}

// AtomicOutput under every power cut: the target holds the old file or the whole new one.
Status write_new_output(Env& env, Order order) {
  const std::string target = "/d/out.img";
  if (order == Order::FlushBeforePointer) {
    return write_atomically(env, target, [](File& f) { return f.write_at(0, filled(3000, 'n')); });
  }
  // The classic mistake: rename before the data is flushed.
  VHDKIT_ASSIGN(auto f, env.open("/d/out.tmp", Access::ReadWrite, Creation::CreateNew));
  VHDKIT_TRY(f->write_at(0, filled(3000, 'n')));
  VHDKIT_TRY(env.rename("/d/out.tmp", target));
  VHDKIT_TRY(env.sync_dir("/d"));
  return f->flush();
}

TEST(CrashEnvDirectories, AtomicOutputLeavesOldOrNewAfterEveryPowerCut) {
  for (Order order : {Order::FlushBeforePointer, Order::NoFlush}) {
    uint64_t partial = 0;
    auto coverage = run_crash_matrix([](CrashEnv& env) { env.set_bytes("/d/out.img", filled(1000, 'o')); },
                                     [&](Env& env) { (void)write_new_output(env, order); }, "/d/out.img",
                                     [&](MemEnv& after, const CrashPoint& point) {
                                       auto out = after.bytes("/d/out.img");
                                       ASSERT_TRUE(out) << point.describe();
                                       bool old_or_new = *out == filled(1000, 'o') || *out == filled(3000, 'n');
                                       if (order == Order::FlushBeforePointer) {
                                         EXPECT_TRUE(old_or_new) << point.describe();
                                       }
                                       partial += !old_or_new;
                                     });
    if (order == Order::FlushBeforePointer) {
      EXPECT_EQ(coverage.total_ops, 5u);  // create, write, flush, rename, sync dir
      EXPECT_GE(coverage.states, 10u);
    } else {
      EXPECT_GT(partial, 0u) << "renaming before the flush must show a partial output in some state";
    }
  }
}

}  // namespace
}  // namespace vhdkit::io

namespace vhdkit::io {
namespace {

TEST(CrashEnvHarness, SetupThroughTheEnvIsDurableAndNotCounted) {
  uint64_t checked = 0;
  auto coverage = run_crash_matrix(
      [](CrashEnv& env) {  // made through the Env, never flushed or synced: still the starting point
        auto f = *env.open("/d/img", Access::ReadWrite, Creation::CreateNew);
        ASSERT_TRUE(f->write_at(0, filled(1024, 's')));
      },
      [](Env& env) {
        auto f = env.open("/d/img", Access::ReadWrite);
        if (f) (void)(*f)->write_at(0, filled(10, 'w'));
      },
      "/d/img",
      [&](MemEnv& after, const CrashPoint& point) {
        auto img = after.bytes("/d/img");
        ASSERT_TRUE(img) << point.describe();
        EXPECT_EQ(chars(*img, 10, 1024), std::string(1014, 's')) << point.describe();
        ++checked;
      });
  EXPECT_EQ(coverage.total_ops, 1u) << "only the workload's write counts";
  EXPECT_EQ(checked, 2u);  // the write landed or not
}

}  // namespace
}  // namespace vhdkit::io
