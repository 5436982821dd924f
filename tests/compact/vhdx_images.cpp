// SPDX-License-Identifier: Apache-2.0
// VHDX test images that no tool here makes: PARTIALLY_PRESENT blocks, sector bitmaps and ZERO blocks that
// keep their file space (Hyper-V writes them), built through the vhdx::Image update API.
#include <random>

#include "image/open_image.h"
#include "images.h"
#include "vhdx/create.h"
#include "vhdx/vhdx_disk.h"

namespace vhdkit::testing {
namespace {

using vhdx::Image;
using vhdx::LogTransaction;
using vhdx::make_bat_entry;
using vhdx::PayloadState;

std::vector<std::byte> random_bytes(uint64_t n, uint64_t seed) {
  std::vector<std::byte> v(n);
  std::mt19937_64 rng(seed);
  for (auto& b : v) b = static_cast<std::byte>(rng() | 1);  // never zero
  return v;
}

std::unique_ptr<disk::VirtualDisk> open_rw(const std::string& path) {
  disk::OpenOptions o;
  o.access = io::Access::ReadWrite;
  auto d = image::open_image(io::Env::posix(), path, o);
  EXPECT_TRUE(d.has_value()) << d.error().what();
  return d ? std::move(*d) : nullptr;
}

void expect_ok(const Status& s) { EXPECT_TRUE(s.has_value()) << s.error().what(); }

uint8_t state_value(PayloadState s) { return static_cast<uint8_t>(s); }

}  // namespace

VhdxDifferencingPair make_vhdx_differencing_pair(const TempDir& dir) {
  VhdxDifferencingPair pair;
  pair.parent = make_dynamic_vhdx(dir, "parent.vhdx", "DDDZDDDDZDHDZZZZ");
  pair.child = dir.file("child.vhdx");
  const std::vector<std::byte> parent = virtual_content(io::Env::posix(), pair.parent);
  vhdx::CreateOptions options;
  options.block_size = kMiB;
  options.parent_path = pair.parent;
  expect_ok(vhdx::create(io::Env::posix(), pair.child, options));
  auto parent_block = [&](uint64_t b) { return std::span(parent).subspan(b * kMiB, kMiB); };

  // Blocks 0-4 through the writer (FULLY_PRESENT, at 4-9 MiB in this order).
  {
    auto d = open_rw(pair.child);
    if (!d) return pair;
    std::vector<std::byte> zeros(kMiB);
    std::vector<std::byte> almost(parent_block(4).begin(), parent_block(4).end());
    almost[300000] = ~almost[300000];
    expect_ok(d->write(0 * kMiB, parent_block(0)));
    expect_ok(d->write(1 * kMiB, zeros));
    expect_ok(d->write(2 * kMiB, random_bytes(kMiB, 2)));
    expect_ok(d->write(3 * kMiB, zeros));
    expect_ok(d->write(4 * kMiB, almost));
    expect_ok(d->flush());
  }

  // Blocks 5-8 and 10 PARTIALLY_PRESENT (9-13 MiB and 14 MiB), block 9 ZERO naming 13 MiB, the sector
  // bitmap block at 15 MiB. 1 MiB blocks of 512-byte sectors: 2048 sectors, 256 bitmap bytes per block.
  auto d = open_rw(pair.child);
  if (!d) return pair;
  Image& image = *vhdx::image_of(*d);
  expect_ok(image.begin_update(vhdx::ContentChange::Visible));
  const uint64_t first = image.allocation_end();
  EXPECT_EQ(first, 9 * kMiB);
  io::File& f = image.file();
  expect_ok(f.truncate(first + 7 * kMiB));
  std::vector<std::byte> bits(kMiB);
  auto set_bits = [&](uint64_t block, uint64_t sectors) {
    for (uint64_t s = 0; s < sectors; ++s) bits[block * 256 + s / 8] |= std::byte(1u << (s % 8));
  };
  // A partial block: garbage everywhere, then `present` bytes of `data` at its start.
  auto partial = [&](uint64_t block, uint64_t at, std::span<const std::byte> data) {
    std::vector<std::byte> bytes = random_bytes(kMiB, 100 + block);
    std::copy(data.begin(), data.end(), bytes.begin());
    expect_ok(f.write_at(at, bytes));
    set_bits(block, data.size() / 512);
  };
  std::vector<std::byte> zeros(kMiB);
  partial(5, first + 0 * kMiB, parent_block(5).first(64 * 1024));
  partial(6, first + 1 * kMiB, std::span(zeros).first(64 * 1024));
  partial(7, first + 2 * kMiB, random_bytes(64 * 1024, 7));
  partial(8, first + 3 * kMiB, std::span(zeros).first(64 * 1024));
  partial(10, first + 5 * kMiB, std::span(zeros).first(kMiB / 2));
  set_bits(1, 2048);  // stale bits of blocks that are not PARTIALLY_PRESENT
  bits[7 * 256 + 200] = std::byte{0xff};
  const uint64_t bitmap = first + 6 * kMiB;
  expect_ok(f.write_at(bitmap, bits));
  expect_ok(f.flush());
  image.set_file_size(first + 7 * kMiB);
  const auto& g = image.geometry();
  const uint8_t partially = state_value(PayloadState::PartiallyPresent);
  LogTransaction tx;
  image.add_bat_changes(tx, std::vector<std::pair<uint64_t, uint64_t>>{
                                {g.payload_index(5), make_bat_entry(partially, first + 0 * kMiB)},
                                {g.payload_index(6), make_bat_entry(partially, first + 1 * kMiB)},
                                {g.payload_index(7), make_bat_entry(partially, first + 2 * kMiB)},
                                {g.payload_index(8), make_bat_entry(partially, first + 3 * kMiB)},
                                {g.payload_index(9), make_bat_entry(state_value(PayloadState::Zero), first + 4 * kMiB)},
                                {g.payload_index(10), make_bat_entry(partially, first + 5 * kMiB)},
                                {g.bitmap_index(0), make_bat_entry(6, bitmap)}});
  expect_ok(image.commit(tx));
  expect_ok(image.close_log());
  return pair;
}

void mark_zero_keeping_space(const std::string& vhdx, const std::vector<uint64_t>& blocks) {
  mark_without_data_keeping_space(vhdx, blocks, PayloadState::Zero);
}

void mark_without_data_keeping_space(const std::string& vhdx, const std::vector<uint64_t>& blocks,
                                     vhdx::PayloadState state) {
  auto d = open_rw(vhdx);
  if (!d) return;
  Image& image = *vhdx::image_of(*d);
  std::vector<std::pair<uint64_t, uint64_t>> changes;
  for (uint64_t b : blocks) {
    EXPECT_EQ(image.block(b).payload_state(), PayloadState::FullyPresent) << "block " << b;
    std::vector<std::byte> data(image.metadata().block_size);
    expect_ok(image.read_file(image.block(b).file_offset, data));
    EXPECT_TRUE(std::all_of(data.begin(), data.end(), [](std::byte x) { return x == std::byte{0}; }))
        << "block " << b << " holds data";
    changes.emplace_back(image.geometry().payload_index(b),
                         make_bat_entry(state_value(state), image.block(b).file_offset));
  }
  expect_ok(image.begin_update(vhdx::ContentChange::Invisible));
  LogTransaction tx;
  image.add_bat_changes(tx, changes);
  expect_ok(image.commit(tx));
  expect_ok(image.close_log());
}

}  // namespace vhdkit::testing
