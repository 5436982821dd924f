// SPDX-License-Identifier: Apache-2.0
// Hostile VHD files (issue 14): damage with valid checksums, so that it reaches the table limits, the
// wrapping offsets, the parent locators and the footer rules, judged through the real vhdkit binary
// (tests/support/hostile.h).
#include <fmt/format.h>

#include <filesystem>
#include <functional>

#include "hostile.h"
#include "image/open_image.h"
#include "vhd_test_util.h"

namespace vhdkit::vhd::testing {
namespace {

using vhdkit::testing::HostileCase;
using vhdkit::testing::Outcome;

constexpr uint64_t kHeaderAt = 512;  // where qemu and we put the dynamic header

// A qemu-made 16 MiB dynamic disk (2 MiB blocks) with blocks 0 and 2 written.
std::string qemu_dynamic(const TempDir& dir) {
  std::string path = dir.file("hostile.vhd");
  run_ok("qemu-img create -q -f vpc " + q(path) + " 16M");
  run_ok("qemu-io -f vpc -c 'write -P 0xab 0 64k' -c 'write -P 0xcd 4M 64k' " + q(path) + " >/dev/null");
  return path;
}

// parent.vhd and child.vhd (ours): returns the child.
std::string our_child(const TempDir& dir) {
  auto& env = io::Env::posix();
  auto p = image::create_image(env, dir.file("parent.vhd"),
                               {disk::Format::Vhd, disk::DiskType::Dynamic, 8 << 20, 0, std::nullopt});
  EXPECT_TRUE(p);
  EXPECT_TRUE((*p)->write(0, pattern(4096, 1)));
  auto c = image::create_image(env, dir.file("child.vhd"),
                               {disk::Format::Vhd, disk::DiskType::Differencing, 0, 0, dir.file("parent.vhd")});
  EXPECT_TRUE(c);
  EXPECT_TRUE((*c)->write(2 << 20, pattern(4096, 2)));
  return dir.file("child.vhd");
}

uint64_t file_size(const std::string& p) { return std::filesystem::file_size(p); }

// Reseals a footer or header reading only its own bytes (these files may be sparse and gigabytes long).
void reseal_at(const std::string& p, uint64_t offset, size_t size, size_t checksum_offset) {
  std::vector<std::byte> b = read_range(p, offset, size);
  uint32_t sum = vhd_checksum(b, checksum_offset);
  patch_file(p, offset + checksum_offset, be32(sum));
}
void seal_header_at(const std::string& p, uint64_t offset) {
  reseal_at(p, offset, kDynamicHeaderSize, kHeaderChecksumOffset);
}
void seal_footer_at(const std::string& p, uint64_t offset) { reseal_at(p, offset, kFooterSize, kFooterChecksumOffset); }

void patch_header(const std::string& p, uint64_t field, const std::vector<uint8_t>& bytes) {
  patch_file(p, kHeaderAt + field, bytes);
  seal_header_at(p, kHeaderAt);
}
// Both footers (the copy at 0 and the one at the end) get the same change.
void patch_footers(const std::string& p, uint64_t field, const std::vector<uint8_t>& bytes) {
  uint64_t end = file_size(p) - 512;
  for (uint64_t at : {uint64_t{0}, end}) {
    patch_file(p, at + field, bytes);
    seal_footer_at(p, at);
  }
}
// Grows the file (sparse) to new_size, moving the end footer there.
void move_footer(const std::string& p, uint64_t new_size) {
  uint64_t old = file_size(p);
  std::vector<std::byte> footer = read_range(p, old - 512, 512);
  std::filesystem::resize_file(p, old - 512);
  std::filesystem::resize_file(p, new_size - 512);
  write_range(p, new_size - 512, footer);
  std::filesystem::resize_file(p, new_size);
}

HostileCase dyn(std::string name, std::function<void(const std::string&)> damage, Outcome outcome, std::string phrase) {
  return {std::move(name),
          [damage](const TempDir& dir) {
            std::string p = qemu_dynamic(dir);
            damage(p);
            return p;
          },
          outcome, std::move(phrase)};
}
HostileCase child(std::string name, std::function<void(const std::string&)> damage, Outcome outcome,
                  std::string phrase) {
  return {std::move(name),
          [damage](const TempDir& dir) {
            std::string p = our_child(dir);
            damage(p);
            return p;
          },
          outcome, std::move(phrase)};
}

// Max Table Entries = n, block size = bs, the file grown (sparse) so that the table fits before the footer.
std::function<void(const std::string&)> table(uint64_t n, uint32_t bs) {
  return [n, bs](const std::string& p) {
    patch_header(p, 28, be32(static_cast<uint32_t>(n)));
    patch_header(p, 32, be32(bs));
    move_footer(p, 1536 + n * 4 + (64 << 20));
  };
}

std::vector<HostileCase> cases() {
  std::vector<HostileCase> v;
  // ---- Tables sized from the file: bounded, never an abort.
  v.push_back(dyn("Table4e9EntriesOf512Bytes", table(4000000000u, 512), Outcome::Refused, "qemu accepts"));
  v.push_back(dyn("TableOverQemuLimit", table(kQemuMaxTableEntries + 1, 512), Outcome::Refused, "qemu accepts"));
  v.push_back(dyn("TableOverMemoryLimit", table(kMaxReadTableEntries + 1, 4096), Outcome::Refused, "holds in memory"));
  v.push_back(dyn("TableAbsurdFor4KiBBlocks", table(0xFFFFFFFFu, 4096), Outcome::Refused, "absurd"));
  // 8 Mi entries (the most we hold), all zero: every one names the footer copy; the complaints are bounded.
  v.push_back(dyn("TableAtMemoryLimitAllZero", table(kMaxReadTableEntries, 4096), Outcome::Refused, "more problems"));
  // ---- Offsets near 2^64 and 2^32 sectors.
  for (uint64_t at : {0xFFFFFFFFFFFFFE00ull, 0x8000000000000000ull, 0xFFFFFFFFull * 512})
    v.push_back(dyn(
        fmt::format("TableOffsetWraps_{:x}", at), [at](const std::string& p) { patch_header(p, 16, be64(at)); },
        Outcome::Refused, "BAT at offset"));
  for (uint64_t at : {0xFFFFFFFFFFFFFE00ull, 0xFFFFFFFFFFFFFFFFull - 1023})
    v.push_back(dyn(
        fmt::format("DataOffsetWraps_{:x}", at), [at](const std::string& p) { patch_footers(p, 16, be64(at)); },
        Outcome::Refused, "does not point at a dynamic header"));
  for (uint32_t e : {0xFFFFFFFEu, 0x80000000u, 0x7FFFFFFFu})
    v.push_back(dyn(
        fmt::format("BatEntryFar_{:x}", e), [e](const std::string& p) { patch_file(p, 1536 + 4, be32(e)); },
        Outcome::Refused, "BAT entry 1 points past the end"));
  // ---- Parent locators: no wrapping, no allocation of what the length says.
  for (uint64_t at : {0xFFFFFFFFFFFFFE00ull, 0x8000000000000000ull})
    v.push_back(child(
        fmt::format("LocatorOffsetWraps_{:x}", at), [at](const std::string& p) { patch_header(p, 576 + 16, be64(at)); },
        Outcome::Refused, "lies outside the file's metadata area"));
  v.push_back(child(
      "LocatorLength4GiB",
      [](const std::string& p) {
        patch_header(p, 576 + 8, be32(0xFFFFFE00u));
        move_footer(p, file_size(p) + (uint64_t{5} << 30));
      },
      Outcome::Refused, "a locator holds at most"));
  // ---- The footer rules: read what qemu reads, refuse to write what is ambiguous.
  v.push_back(dyn(
      "EndFooterMissing", [](const std::string& p) { std::filesystem::resize_file(p, file_size(p) - 512); },
      Outcome::ReadOnly, "footer at the end of the file is missing"));
  v.push_back(dyn(
      "EndFooterCookieDamaged", [](const std::string& p) { patch_file(p, file_size(p) - 512, {'X'}); },
      Outcome::ReadOnly, "footer at the end of the file is missing"));
  for (uint64_t extra : {uint64_t{1}, uint64_t{511}, uint64_t{512}, uint64_t{4096}})
    v.push_back(dyn(
        fmt::format("TrailingBytes_{}", extra),
        [extra](const std::string& p) {
          uint64_t size = file_size(p);
          std::filesystem::resize_file(p, size + extra);
          patch_file(p, size + extra - 1, {0x5a});
        },
        Outcome::ReadOnly, "followed by other bytes"));
  v.push_back(dyn(
      "FooterCopyDiffers",
      [](const std::string& p) {
        patch_file(p, 28, {'x', 'x', 'x', 'x'});  // the copy's Creator Application
        seal_footer_at(p, 0);
      },
      Outcome::ReadOnly, "differs from the footer at the end"));
  // ---- Overlaps (footer copy, dynamic header, BAT, parent locators, blocks): new in the second round of issue 14.
  // Locator i's entry is at header + 576 + 24 i: code, space, length, reserved, offset (8 bytes at +16).
  auto locator_offset = [](const std::string& p, int i) {
    std::vector<std::byte> b = read_range(p, kHeaderAt + 576 + 24 * i + 16, 8);
    return load_be<uint64_t>(b.data());
  };
  auto table_offset = [](const std::string& p) { return load_be<uint64_t>(read_range(p, kHeaderAt + 16, 8).data()); };
  v.push_back(child(
      "LocatorOverlapsBat", [table_offset](const std::string& p) { patch_header(p, 576 + 16, be64(table_offset(p))); },
      Outcome::Refused, "overlaps"));
  v.push_back(child(
      "LocatorsOverlap",
      [locator_offset](const std::string& p) { patch_header(p, 576 + 24 + 16, be64(locator_offset(p, 0))); },
      Outcome::Refused, "overlaps"));
  v.push_back(child(
      "LocatorInDynamicHeader", [](const std::string& p) { patch_header(p, 576 + 16, be64(kHeaderAt + 512)); },
      Outcome::Refused, "overlaps"));
  v.push_back(child(
      "BlockOverlapsLocator",
      [locator_offset, table_offset](const std::string& p) {
        patch_file(p, table_offset(p) + 4, be32(static_cast<uint32_t>(locator_offset(p, 0) / 512)));
      },
      Outcome::Refused, "points into parent locator"));
  v.push_back(dyn(
      "BlockInFooterCopy", [](const std::string& p) { patch_file(p, 1536 + 4, be32(0)); }, Outcome::Refused,
      "BAT entry 1 points into the footer copy"));
  v.push_back(dyn(
      "BlockInBat", [](const std::string& p) { patch_file(p, 1536 + 4, be32(1536 / 512)); }, Outcome::Refused,
      "BAT entry 1 points into"));
  v.push_back(dyn(
      "BatEntriesShareABlock",
      [](const std::string& p) { write_range(p, 1536 + 8, read_range(p, 1536, 4)); },  // entry 2 = entry 0
      Outcome::Refused, "BAT entries 0 and 2 overlap"));
  v.push_back(dyn(
      "BatOverlapsFooterCopy", [](const std::string& p) { patch_header(p, 16, be64(0)); }, Outcome::Refused,
      "overlaps"));
  // ---- The footer copy as qemu reads it (block/vpc.c takes a copy at offset 0 that has the cookie).
  v.push_back(dyn(
      "FooterCopySaysAnotherSize",
      [](const std::string& p) {
        // One cylinder less in the copy's geometry: qemu reads the copy's smaller disk, and so must we.
        uint16_t cylinders = load_be<uint16_t>(read_range(p, 56, 2).data());
        patch_file(p, 56, {static_cast<uint8_t>((cylinders - 1) >> 8), static_cast<uint8_t>(cylinders - 1)});
        seal_footer_at(p, 0);
      },
      Outcome::ReadOnly, "differs from the footer at the end"));
  v.push_back(dyn(
      "FooterCopyBadChecksumDiffers",
      // Not resealed: qemu 7 refuses the file ("Incorrect header checksum"), vhdkit reads the end footer.
      [](const std::string& p) {
        patch_file(p, 28, {'x', 'x', 'x', 'x'});
      },
      Outcome::ReadOnlyNoQemu, "has a wrong checksum"));
  return v;
}

class VhdHostile : public ::testing::TestWithParam<HostileCase> {};

TEST_P(VhdHostile, EndsInTimeAndNeverCostsData) { run_hostile_case(GetParam(), "vpc"); }

INSTANTIATE_TEST_SUITE_P(Cases, VhdHostile, ::testing::ValuesIn(cases()),
                         [](const auto& param_info) { return param_info.param.name; });

// `vhdkit create` makes no VHD that qemu reads wrongly (its bitmap formula gives 0 bytes under 4 KiB).
class VhdCreateBlockSize : public ::testing::TestWithParam<int> {};

TEST_P(VhdCreateBlockSize, QemuUnreadableBlockSizesAreRefused) {
  TempDir dir;
  std::string path = dir.file("small-blocks.vhd");
  auto m = measure_vhdkit(fmt::format("create --format vhd --size 1M --block-size {} {}", GetParam(), q(path)));
  EXPECT_NE(m.status, 0);
  EXPECT_NE(m.err.find("qemu reads the sector bitmap of smaller blocks wrongly"), std::string::npos) << m.err;
  EXPECT_FALSE(std::filesystem::exists(path));
}

INSTANTIATE_TEST_SUITE_P(Sizes, VhdCreateBlockSize, ::testing::Values(512, 1024, 2048));

TEST(VhdCreateBlockSize, FourKiBBlocksReadTheSameInQemu) {
  TempDir dir;
  std::string path = dir.file("4k.vhd");
  run_ok(fmt::format("{} create --format vhd --size 1M --block-size 4096 {}", q(vhdkit_bin()), q(path)));
  run_ok("qemu-io -f vpc -c 'write -P 0x5c 4k 8k' " + q(path) + " >/dev/null");
  run_ok("qemu-img convert -f vpc -O raw " + q(path) + " " + q(dir.file("q.raw")));
  run_ok(fmt::format("{} compare {} {}", q(vhdkit_bin()), q(path), q(dir.file("q.raw"))));
}

}  // namespace
}  // namespace vhdkit::vhd::testing
