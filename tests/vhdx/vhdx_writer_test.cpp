// SPDX-License-Identifier: Apache-2.0
// Our writer: dynamic, fixed and differencing VHDX made by vhdx::create and filled through VirtualDisk::write
// pass qemu-img check, open in qemu-img info and vhdiinfo, and read back what was written (refereed by
// qemu-img convert where qemu can read the image). Updates follow the spec's GUID rules, and a power cut at
// any point of a write + flush leaves an image that opens and reads old or new data, never anything else.
#include <fmt/format.h>

#include <random>

#include "io/testing/crash_env.h"
#include "vhdx/create.h"
#include "vhdx_test_util.h"

namespace vhdkit::vhdx::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

struct Write {
  uint64_t offset;
  uint64_t length;
  uint8_t seed;
};

std::vector<std::byte> pattern(uint64_t length, uint8_t seed) {
  std::vector<std::byte> v(length);
  for (uint64_t i = 0; i < length; ++i) v[i] = static_cast<std::byte>((i * 31 + seed) % 251 + 1);
  return v;
}

// Applies writes to the disk and to a raw file that holds what the disk should read afterwards.
void apply(disk::VirtualDisk& d, const std::string& expected_raw, const std::vector<Write>& writes) {
  auto raw = io::Env::posix().open(expected_raw, io::Access::ReadWrite);
  ASSERT_TRUE(raw.has_value());
  for (const Write& w : writes) {
    auto data = pattern(w.length, w.seed);
    auto r = d.write(w.offset, data);
    ASSERT_TRUE(r.has_value()) << r.error().what();
    ASSERT_TRUE((*raw)->write_at(w.offset, data).has_value());
  }
  auto f = d.flush();
  ASSERT_TRUE(f.has_value()) << f.error().what();
}

std::string make_zero_raw(const TempDir& dir, const std::string& name, uint64_t size) {
  std::string p = dir.file(name);
  run_ok("truncate -s " + std::to_string(size) + " " + q(p));
  return p;
}

Status create_file(const std::string& path, CreateOptions o) { return create(io::Env::posix(), path, o); }

CreateOptions sized(uint64_t size, uint32_t block = 1 << 20, uint32_t logical = 512) {
  CreateOptions o;
  o.virtual_size = size;
  o.block_size = block;
  o.logical_sector_size = logical;
  return o;
}

CreateOptions child_of(const std::string& parent, uint32_t block = 32 << 20) {
  CreateOptions o;
  o.block_size = block;
  o.parent_path = parent;
  return o;
}

// Writes that start, end and straddle blocks, unaligned, at both ends of the disk.
std::vector<Write> mixed_writes(uint64_t size, uint32_t block) {
  return {{0, 4096, 1},
          {block - 1000, 3000, 2},  // straddles the first block boundary, unaligned
          {3 * uint64_t{block} + 512, 70000, 3},
          {size - 8192, 8192, 4},  // the last sector of the disk
          {100, 10, 5}};           // rewrites a FULLY_PRESENT block in place
}

struct Shape {
  uint32_t block_size;
  uint32_t logical;
  Subformat subformat;
};

class VhdxWriter : public ::testing::TestWithParam<Shape> {};

TEST_P(VhdxWriter, WrittenImagePassesQemuCheckAndReadsBack) {
  const Shape& s = GetParam();
  TempDir dir;
  std::string path = dir.file("ours.vhdx");
  uint64_t size = 8 * uint64_t{s.block_size} > 64 * kMiB ? 8 * uint64_t{s.block_size} : 64 * kMiB;
  CreateOptions o;
  o.virtual_size = size;
  o.block_size = s.block_size;
  o.logical_sector_size = s.logical;
  o.subformat = s.subformat;
  ASSERT_TRUE(create_file(path, o).has_value());
  std::string expected = make_zero_raw(dir, "expected.raw", size);
  {
    auto d = open_ok(path, io::Access::ReadWrite);
    ASSERT_TRUE(d);
    apply(*d, expected, mixed_writes(size, s.block_size));
  }
  std::string vhdi = run_ok("vhdiinfo " + q(path));
  EXPECT_NE(vhdi.find("VHDX"), std::string::npos) << vhdi;
  EXPECT_NE(vhdi.find(fmt::format("{} bytes", size)), std::string::npos) << vhdi;
  if (s.logical == 512) {
    run_ok("qemu-img check " + q(path));
    std::string info = run_ok("qemu-img info --output=json " + q(path));
    EXPECT_NE(info.find("\"format\": \"vhdx\""), std::string::npos) << info;
    EXPECT_NE(info.find("\"virtual-size\": " + std::to_string(size)), std::string::npos) << info;
    run_ok("qemu-img compare -f vhdx -F raw " + q(path) + " " + q(expected));
  } else {
    // qemu 7.2 reads only 512-byte logical sectors (and cannot create others): it must refuse, not misread.
    RunResult r = run("qemu-img info " + q(path));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("not supported"), std::string::npos) << r.err;
  }
  auto d = open_ok(path);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->check().empty());
  expect_same_as_raw(*d, expected, dir);
  EXPECT_EQ(d->info().type, s.subformat == Subformat::Fixed ? disk::DiskType::Fixed : disk::DiskType::Dynamic);
}

INSTANTIATE_TEST_SUITE_P(Shapes, VhdxWriter,
                         ::testing::Values(Shape{1 << 20, 512, Subformat::Dynamic},
                                           Shape{32 << 20, 512, Subformat::Dynamic},
                                           Shape{2 << 20, 4096, Subformat::Dynamic},
                                           Shape{1 << 20, 512, Subformat::Fixed}),
                         [](const auto& p) {
                           return fmt::format("{}M_{}_{}", p.param.block_size >> 20, p.param.logical,
                                              p.param.subformat == Subformat::Fixed ? "fixed" : "dynamic");
                         });

TEST(VhdxWriter, GuidsChangeAsTheSpecSays) {
  TempDir dir;
  std::string path = dir.file("g.vhdx");
  ASSERT_TRUE(create_file(path, sized(16 * kMiB)).has_value());
  auto guids = [&] {
    auto d = open_ok(path);
    return std::pair{image_of(*d)->header().file_write_guid, image_of(*d)->header().data_write_guid};
  };
  auto g0 = guids();
  {
    auto d = open_ok(path, io::Access::ReadWrite);  // opened read-write, nothing written
  }
  EXPECT_EQ(guids(), g0);
  std::string before = sha256(path);
  {
    auto d = open_ok(path);  // read-only open writes nothing at all
  }
  EXPECT_EQ(sha256(path), before);
  {
    auto d = open_ok(path, io::Access::ReadWrite);
    auto data = pattern(4096, 9);
    ASSERT_TRUE(d->write(0, data).has_value());
    ASSERT_TRUE(d->flush().has_value());
    EXPECT_TRUE(image_of(*d)->header().log_guid.is_zero());  // flush leaves no log to replay
  }
  auto g1 = guids();
  EXPECT_NE(g1.first, g0.first);
  EXPECT_NE(g1.second, g0.second);
  {
    // A log-only change (no visible content change) renews FileWriteGuid only.
    auto d = open_ok(path, io::Access::ReadWrite);
    Image& image = *image_of(*d);
    LogTransaction tx;
    image.add_bat_changes(tx,
                          std::vector<std::pair<uint64_t, uint64_t>>{
                              {image.geometry().payload_index(5), make_bat_entry(2, 0)}});  // ZERO: reads zeros already
    ASSERT_TRUE(image.commit(tx).has_value());
    ASSERT_TRUE(image.close_log().has_value());
    EXPECT_EQ(image.block(5).payload_state(), PayloadState::Zero);
  }
  auto g2 = guids();
  EXPECT_NE(g2.first, g1.first);
  EXPECT_EQ(g2.second, g1.second);
  run_ok("qemu-img check " + q(path));
}

TEST(VhdxWriter, RefusesAnImageAnotherProgramHolds) {
  TempDir dir;
  std::string path = dir.file("held.vhdx");
  ASSERT_TRUE(create_file(path, sized(16 * kMiB)).has_value());
  auto d = open_ok(path, io::Access::ReadWrite);
  ASSERT_TRUE(d);
  auto second = open_result(path, io::Access::ReadWrite);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code(), ReturnCode::InUse);
  RunResult r = run("qemu-img info " + q(path));
  EXPECT_NE(r.status, 0);  // qemu sees our lock too
}

TEST(VhdxWriter, CreateValidatesItsOptions) {
  TempDir dir;
  for (CreateOptions o : {sized(16 * kMiB, 3 << 20), sized(16 * kMiB, 512u << 20), sized(16 * kMiB, 1 << 20, 1024),
                          sized(100), sized(uint64_t{65} << 40)}) {
    auto r = create_file(dir.file("bad.vhdx"), o);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ReturnCode::InvalidParameter);
    EXPECT_FALSE(std::filesystem::exists(dir.file("bad.vhdx")));
  }
}

// ---- Differencing ----

TEST(VhdxDifferencing, ChildReadsParentWhereItHasNoDataAndItsOwnElsewhere) {
  TempDir dir;
  std::string parent = dir.file("parent.vhdx");
  run_ok("qemu-img create -f vhdx -o block_size=2M " + q(parent) + " 32M");
  run_ok("qemu-io -c 'write -P 0x11 0 5M' -c 'write -P 0x22 20M 3M' " + q(parent));
  std::string expected = qemu_raw(parent, dir, "expected.raw");
  std::filesystem::create_directory(dir.path() / "kids");
  std::string child = dir.file("kids/child.vhdx");
  ASSERT_TRUE(create_file(child, child_of(parent, 1 << 20)).has_value());
  {
    auto d = open_ok(child, io::Access::ReadWrite);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->info().type, disk::DiskType::Differencing);
    ASSERT_NE(d->parent(), nullptr);
    // Before any write the child reads exactly the parent.
    expect_same_as_raw(*d, expected, dir);
    apply(*d, expected, {{4 * kMiB + 100, 2 * kMiB, 7}, {30 * kMiB, 4096, 8}});
  }
  auto d = open_ok(child);
  ASSERT_TRUE(d);
  expect_same_as_raw(*d, expected, dir);
  // Blocks the child never wrote fall through to the parent in the map (depth 1).
  auto m = d->map();
  ASSERT_TRUE(m.has_value());
  bool saw_parent = false, saw_own = false;
  for (const auto& e : *m) {
    saw_parent = saw_parent || (e.depth == 1 && e.data);
    saw_own = saw_own || (e.depth == 0 && e.data);
  }
  EXPECT_TRUE(saw_parent);
  EXPECT_TRUE(saw_own);
  EXPECT_TRUE(d->check().empty());
  // libvhdi reads the child and finds its parent by the locator.
  std::string vhdi = run_ok("vhdiinfo " + q(child));
  EXPECT_NE(vhdi.find("Differential"), std::string::npos) << vhdi;
  // qemu would follow relative_path if it read differencing VHDX; 7.2 refuses them ("Operation not
  // supported"). If a later qemu reads them, its read must equal ours.
  RunResult r = run("qemu-img convert -O raw " + q(child) + " " + q(dir.file("qemu-child.raw")));
  if (r.status == 0) {
    run_ok("qemu-img compare -f raw -F raw " + q(dir.file("qemu-child.raw")) + " " + q(expected));
  } else {
    EXPECT_NE(r.err.find("not supported"), std::string::npos) << r.err;
  }
}

// A PARTIALLY_PRESENT block (no tool here makes one: built through the Image update API, as compaction
// would): sectors whose bitmap bit is set come from the child, the others from the parent; a write into
// the block makes it FULLY_PRESENT with the same content around the write.
TEST(VhdxDifferencing, PartiallyPresentBlocksMixChildAndParentSectors) {
  TempDir dir;
  std::string parent = dir.file("p.vhdx"), child = dir.file("c.vhdx");
  run_ok("qemu-img create -f vhdx -o block_size=1M " + q(parent) + " 8M");
  run_ok("qemu-io -c 'write -P 0x70 0 2M' " + q(parent));
  ASSERT_TRUE(create_file(child, child_of(parent, 1 << 20)).has_value());
  std::string expected = qemu_raw(parent, dir, "expected.raw");
  {
    auto d = open_ok(child, io::Access::ReadWrite);
    ASSERT_TRUE(d);
    Image& image = *image_of(*d);
    ASSERT_TRUE(image.begin_update(ContentChange::Visible).has_value());
    uint64_t payload = image.allocation_end(), bitmap = payload + kMiB;
    io::File& f = image.file();
    ASSERT_TRUE(f.truncate(bitmap + kMiB).has_value());
    ASSERT_TRUE(f.write_at(payload, pattern(kMiB, 3)).has_value());
    Bytes bits(kMiB);
    bits[256] = std::byte{0x0f};  // block 1 starts at bit 2048 of the chunk: its sectors 0-3 are present
    ASSERT_TRUE(f.write_at(bitmap, bits).has_value());
    ASSERT_TRUE(f.flush().has_value());
    image.set_file_size(bitmap + kMiB);
    LogTransaction tx;
    image.add_bat_changes(
        tx, std::vector<std::pair<uint64_t, uint64_t>>{{image.geometry().payload_index(1), make_bat_entry(7, payload)},
                                                       {image.geometry().bitmap_index(0), make_bat_entry(6, bitmap)}});
    ASSERT_TRUE(image.commit(tx).has_value());
    ASSERT_TRUE(image.close_log().has_value());
  }
  // Block 1, sectors 0-3 are the child's bytes, the rest of it the parent's.
  {
    auto raw = io::Env::posix().open(expected, io::Access::ReadWrite);
    auto child_bytes = pattern(kMiB, 3);
    ASSERT_TRUE((*raw)->write_at(kMiB, std::span(child_bytes).first(2048)).has_value());
  }
  auto d = open_ok(child);
  ASSERT_TRUE(d);
  EXPECT_EQ(image_of(*d)->block(1).payload_state(), PayloadState::PartiallyPresent);
  EXPECT_TRUE(d->check().empty());
  expect_same_as_raw(*d, expected, dir);
  auto m = d->map();
  ASSERT_TRUE(m.has_value());
  bool child_run = false;
  for (const auto& e : *m) child_run = child_run || (e.start == kMiB && e.length == 2048 && e.depth == 0 && e.data);
  EXPECT_TRUE(child_run);
  d.reset();
  {
    auto w = open_ok(child, io::Access::ReadWrite);
    apply(*w, expected, {{kMiB + 100000, 5000, 4}});
    EXPECT_EQ(image_of(*w)->block(1).payload_state(), PayloadState::FullyPresent);
  }
  auto again = open_ok(child);
  expect_same_as_raw(*again, expected, dir);
  run_ok("vhdiinfo " + q(child));
}

TEST(VhdxDifferencing, ParentChangedAfterTheChildIsALinkageMismatch) {
  TempDir dir;
  std::string parent = dir.file("p.vhdx"), child = dir.file("c.vhdx");
  run_ok("qemu-img create -f vhdx -o block_size=1M " + q(parent) + " 8M");
  ASSERT_TRUE(create_file(child, child_of(parent)).has_value());
  run_ok("qemu-io -c 'write -P 0x33 0 4k' " + q(parent));  // qemu renews the parent's DataWriteGuid
  std::string before = sha256(child);
  auto r = open_result(child, io::Access::ReadWrite);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("parent linkage mismatch"), std::string::npos) << r.error().what();
  EXPECT_EQ(sha256(child), before);
  // Info-style opens still work and say what is wrong.
  auto d = open_ok(child, io::Access::ReadOnly, disk::ParentPolicy::Optional);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->parent(), nullptr);
  ASSERT_FALSE(d->check().empty());
  EXPECT_NE(d->check().front().find("linkage"), std::string::npos);
}

TEST(VhdxDifferencing, MissingParentIsFileNotFound) {
  TempDir dir;
  std::string parent = dir.file("p.vhdx"), child = dir.file("c.vhdx");
  run_ok("qemu-img create -f vhdx " + q(parent) + " 8M");
  ASSERT_TRUE(create_file(child, child_of(parent)).has_value());
  std::filesystem::remove(parent);
  auto r = open_result(child);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ReturnCode::FileNotFound);
  EXPECT_NE(r.error().message().find("p.vhdx"), std::string::npos) << r.error().what();
}

// ---- Power cuts ----

TEST(VhdxWriter, PowerCutDuringWriteAndFlushLeavesOldOrNewContent) {
  const std::string path = "/crash/disk.vhdx";
  const auto data_a = pattern(3 * kMiB, 1), data_b = pattern(4096, 2);
  auto setup = [&](io::CrashEnv& env) { ASSERT_TRUE(create(env, path, sized(8 * kMiB)).has_value()); };
  auto workload = [&](io::Env& env) {
    auto f = env.open(path, io::Access::ReadWrite);
    if (!f) return;
    disk::OpenOptions o;
    o.access = io::Access::ReadWrite;
    auto d = open_disk(env, std::move(*f), o);
    if (!d) return;
    if (!(*d)->write(512 * 1024, data_a)) return;
    if (!(*d)->write(7 * kMiB, data_b)) return;
    (void)(*d)->flush();
  };
  uint64_t old_or_new = 0;
  auto check = [&](io::MemEnv& after, const io::CrashPoint& point) {
    for (io::Access access : {io::Access::ReadOnly, io::Access::ReadWrite}) {
      auto f = after.open(path, access);
      ASSERT_TRUE(f.has_value());
      disk::OpenOptions o;
      o.access = access;
      auto d = open_disk(after, std::move(*f), o);
      ASSERT_TRUE(d.has_value()) << point.describe() << ": " << d.error().what();
      std::vector<std::byte> a(data_a.size()), b(data_b.size());
      ASSERT_TRUE((*d)->read(512 * 1024, a).has_value());
      ASSERT_TRUE((*d)->read(7 * kMiB, b).has_value());
      // Each block is all old (zeros) or all new: compare block by block.
      for (uint64_t at = 0; at < a.size();) {
        uint64_t vpos = 512 * 1024 + at;
        uint64_t n = std::min<uint64_t>(a.size() - at, kMiB - vpos % kMiB);
        std::span<const std::byte> got(a.data() + at, n), want(data_a.data() + at, n);
        bool is_new = std::equal(got.begin(), got.end(), want.begin());
        ASSERT_TRUE(is_new || all_zero(got)) << point.describe() << " block at " << vpos;
        at += n;
      }
      ASSERT_TRUE(b == data_b || all_zero(b)) << point.describe();
      ++old_or_new;
    }
  };
  io::CrashCoverage c = io::run_crash_matrix(setup, workload, path, check);
  EXPECT_GT(c.states, 20u);
  EXPECT_EQ(old_or_new, 2 * c.states);
  std::cout << "crash states checked: " << c.states << " over " << c.cut_points << " cut points\n";
}

}  // namespace
}  // namespace vhdkit::vhdx::testing
