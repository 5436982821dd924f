// SPDX-License-Identifier: Apache-2.0
// Malformed images: each variant is refused by open_image with a message naming the problem, in both
// read-only and read-write mode, and the file is left byte-for-byte as it was.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "image/open_image.h"
#include "vhd_test_util.h"

namespace vhdkit::vhd::testing {
namespace {

// The layout of a pristine image, read with our parser (the variants then damage it by hand).
struct Layout {
  uint64_t file_size, footer_offset, table_offset, max_table_entries, stride;
  std::vector<uint32_t> bat;
  std::vector<ParentLocator> locators;
};

Layout layout_of(const std::string& path) {
  auto d = open_ok(path, {io::Access::ReadOnly, std::nullopt, disk::ParentPolicy::Optional});
  auto* img = dynamic_cast<Image*>(d.get());
  Layout l{};
  if (!img) {
    ADD_FAILURE() << "not a VHD: " << path;
    return l;
  }
  l.file_size = img->metadata().file_size;
  l.footer_offset = img->footer_offset();
  if (auto* h = img->dynamic_header()) {
    l.table_offset = h->table_offset;
    l.max_table_entries = h->max_table_entries;
    l.stride = img->block_stride();
    l.bat = img->bat();
    l.locators.assign(h->locators.begin(), h->locators.end());
  }
  return l;
}

void truncate_to(const std::string& path, uint64_t size) { std::filesystem::resize_file(path, size); }

// A qemu-made dynamic disk with blocks 0 and 2 allocated.
std::string qemu_dynamic(const TempDir& dir) {
  std::string path = dir.file("base.vhd");
  run_ok("qemu-img create -q -f vpc " + q(path) + " 16M");
  run_ok("qemu-io -f vpc -c 'write -P 0xab 0 64k' -c 'write -P 0xcd 4M 64k' " + q(path));
  return path;
}

std::string our_fixed(const TempDir& dir) {
  std::string path = dir.file("fixed.vhd");
  auto d =
      image::create_image(io::Env::posix(), path, {disk::Format::Vhd, disk::DiskType::Fixed, 8 << 20, 0, std::nullopt});
  EXPECT_TRUE(d);
  return path;
}

// parent.vhd (ours, dynamic) and child.vhd (ours, differencing); returns the child.
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

// The end footer and, on a dynamic or differencing disk, its copy at offset 0 (qemu and we read a sound copy that
// differs, so damage to the end footer alone would not reach the code under test).
void patch_footer(const std::string& path, const Layout& l, uint64_t field, const std::vector<uint8_t>& bytes) {
  std::vector<std::byte> head = read_file(path);
  bool has_copy = head.size() >= 8 && std::memcmp(head.data(), "conectix", 8) == 0 && l.footer_offset != 0;
  for (uint64_t at : has_copy ? std::vector<uint64_t>{0, l.footer_offset} : std::vector<uint64_t>{l.footer_offset}) {
    patch_file(path, at + field, bytes);
    reseal_footer(path, at);
  }
}
void patch_header(const std::string& path, uint64_t field, const std::vector<uint8_t>& bytes) {
  patch_file(path, 512 + field, bytes);
  reseal_header(path, 512);
}
void set_bat(const std::string& path, const Layout& l, size_t index, uint32_t value) {
  patch_file(path, l.table_offset + 4 * index, be32(value));
}

struct Variant {
  std::string name;
  std::function<std::string(const TempDir&)> make;  // returns the path to open
  std::string expect;                               // part of the message
  bool optional_opens = false;                      // ParentPolicy::Optional accepts it
};

std::vector<Variant> variants() {
  std::vector<Variant> v;
  auto dyn = [&](std::string name, std::function<void(const std::string&, const Layout&)> damage, std::string expect) {
    v.push_back({std::move(name),
                 [damage](const TempDir& dir) {
                   std::string p = qemu_dynamic(dir);
                   damage(p, layout_of(p));
                   return p;
                 },
                 std::move(expect)});
  };
  dyn(
      "truncated_to_100_bytes", [](auto& p, auto&) { truncate_to(p, 100); }, "too small to hold a VHD footer");
  dyn(
      "truncated_in_header", [](auto& p, auto&) { truncate_to(p, 1200); }, "footer at the end of the file is missing");
  dyn(
      "truncated_in_bat", [](auto& p, auto&) { truncate_to(p, 1800); }, "footer at the end of the file is missing");
  dyn(
      "truncated_in_block", [](auto& p, auto& l) { truncate_to(p, l.footer_offset - l.stride / 2); },
      "footer at the end of the file is missing");
  // truncated exactly at the footer: qemu reads the copy at offset 0, and so do we (tests/vhd/hostile_test.cpp).
  dyn(
      "truncated_block_footer_kept",
      [](auto& p, auto& l) {
        auto footer = read_file(p);
        std::vector<std::byte> f(footer.begin() + static_cast<ptrdiff_t>(l.footer_offset), footer.end());
        truncate_to(p, l.footer_offset - (1 << 20));
        std::vector<uint8_t> raw(f.size());
        std::memcpy(raw.data(), f.data(), f.size());
        patch_file(p, l.footer_offset - (1 << 20), raw);
      },
      "BAT entry 2 points past the end of the file");
  dyn(
      "footer_checksum",
      [](auto& p, auto& l) {
        // Both copies (with the copy at 0 sound and the end footer damaged, qemu and we read the copy).
        patch_file(p, l.footer_offset + 100, {0x5a});
        patch_file(p, 100, {0x5a});
      },
      "footer checksum is wrong");
  dyn(
      "header_checksum", [](auto& p, auto&) { patch_file(p, 512 + 900, {0x5a}); }, "dynamic header checksum is wrong");
  // The end cookie and the copy's checksum (with only the end cookie damaged, qemu and we read the copy:
  // tests/vhd/hostile_test.cpp).
  dyn(
      "footer_cookie",
      [](auto& p, auto& l) {
        patch_file(p, l.footer_offset, {'c', 'o', 'n', 'e', 'c', 't', 'i', 'y'});
        patch_file(p, 100, {0x5a});
      },
      "cookie \"conectix\"");
  dyn(
      "header_cookie",
      [](auto& p, auto&) {
        patch_file(p, 512, {'c', 'x', 's', 'p', 'a', 'r', 's', 'x'});
      },
      "cookie \"cxsparse\"");
  dyn(
      "bat_entry_past_end", [](auto& p, auto& l) { set_bat(p, l, 1, uint32_t((l.file_size + (1 << 20)) / 512)); },
      "BAT entry 1 points past the end of the file");
  dyn(
      "two_bat_entries_one_block", [](auto& p, auto& l) { set_bat(p, l, 1, l.bat[0]); }, "BAT entries 0 and 1 overlap");
  dyn(
      "bat_entries_half_overlap", [](auto& p, auto& l) { set_bat(p, l, 1, l.bat[0] + 8); },
      "BAT entries 0 and 1 overlap");
  dyn(
      "bat_entry_into_header", [](auto& p, auto& l) { set_bat(p, l, 1, 1); },
      "BAT entry 1 points into the dynamic header");
  dyn(
      "bat_overlaps_header", [](auto& p, auto&) { patch_header(p, 16, be64(1024)); }, "overlaps the BAT");
  dyn(
      "block_size_zero", [](auto& p, auto&) { patch_header(p, 32, be32(0)); }, "Block Size 0 is not a power of two");
  dyn(
      "block_size_not_power_of_two", [](auto& p, auto&) { patch_header(p, 32, be32(3 << 20)); },
      "Block Size 3145728 is not a power of two");
  dyn(
      "block_size_huge", [](auto& p, auto&) { patch_header(p, 32, be32(1u << 31)); }, "larger than the 256 MiB");
  dyn(
      "virtual_size_absurd",
      [](auto& p, auto& l) {
        patch_footer(p, l, 56, {0xff, 0xff, 16, 255});  // maximum geometry: Current Size rules
        patch_footer(p, l, 48, be64(uint64_t{1} << 62));
      },
      "larger than the 2040 GiB");
  dyn(
      "virtual_size_overflowing",
      [](auto& p, auto& l) {
        patch_footer(p, l, 56, {0xff, 0xff, 16, 255});
        patch_footer(p, l, 48, be64(0xFFFFFFFFFFFFFE00ull));
      },
      "larger than the 2040 GiB");
  dyn(
      "table_offset_past_end", [](auto& p, auto& l) { patch_header(p, 16, be64(l.file_size + 4096)); },
      "runs past the end");
  dyn(
      "table_offset_overflowing", [](auto& p, auto&) { patch_header(p, 16, be64(~uint64_t{0} - 100)); },
      "runs past the end");
  dyn(
      "max_table_entries_too_small", [](auto& p, auto&) { patch_header(p, 28, be32(2)); },
      "Max Table Entries is 2, too few");
  dyn(
      "max_table_entries_absurd", [](auto& p, auto&) { patch_header(p, 28, be32(0xFFFFFFFF)); }, "is absurd");
  dyn(
      "disk_type_unknown", [](auto& p, auto& l) { patch_footer(p, l, 60, be32(7)); }, "Disk Type is 7");
  dyn(
      "data_offset_past_end", [](auto& p, auto& l) { patch_footer(p, l, 16, be64(l.file_size * 2)); },
      "does not point at a dynamic header");

  v.push_back({"fixed_shorter_than_its_size",
               [](const TempDir& dir) {
                 std::string p = our_fixed(dir);
                 Layout l = layout_of(p);
                 patch_footer(p, l, 48, be64(16 << 20));
                 return p;
               },
               "the file is truncated"});

  auto diff = [&](std::string name, std::function<void(const TempDir&, const std::string&, const Layout&)> damage,
                  std::string expect, bool optional_opens = false) {
    v.push_back({std::move(name),
                 [damage](const TempDir& dir) {
                   std::string c = our_child(dir);
                   damage(dir, c, layout_of(c));
                   return c;
                 },
                 std::move(expect), optional_opens});
  };
  diff(
      "parent_missing", [](auto& dir, auto&, auto&) { std::filesystem::remove(dir.file("parent.vhd")); },
      "parent disk of this differencing disk was not found", true);
  diff(
      "parent_uuid_wrong",
      [](auto& dir, auto&, auto&) {
        std::filesystem::remove(dir.file("parent.vhd"));
        EXPECT_TRUE(image::create_image(io::Env::posix(), dir.file("parent.vhd"),
                                        {disk::Format::Vhd, disk::DiskType::Dynamic, 8 << 20, 0, std::nullopt}));
      },
      "but this differencing disk expects", true);
  diff(
      "parent_chain_loops_a_b_a",
      [](auto& dir, auto&, auto&) {
        // grandchild's parent is child; then parent.vhd becomes a copy of grandchild: child -> parent
        // (= grandchild) -> child.
        auto g = image::create_image(io::Env::posix(), dir.file("grandchild.vhd"),
                                     {disk::Format::Vhd, disk::DiskType::Differencing, 0, 0, dir.file("child.vhd")});
        EXPECT_TRUE(g);
        g->reset();
        std::filesystem::copy_file(dir.file("grandchild.vhd"), dir.file("parent.vhd"),
                                   std::filesystem::copy_options::overwrite_existing);
      },
      "the parent chain loops");
  v.push_back({"parent_chain_loops_to_itself",
               [](const TempDir& dir) {
                 // child.vhd names parent.vhd; renamed to parent.vhd, it names itself.
                 our_child(dir);
                 std::filesystem::rename(dir.file("child.vhd"), dir.file("parent.vhd"));
                 return dir.file("parent.vhd");
               },
               "the parent chain loops"});
  diff(
      "locator_past_end",
      [](auto&, auto& c, auto& l) { patch_header(c, 576 + 24 * 1 + 16, be64(l.file_size + 10000)); },
      "parent locator 1 (W2ru) data at offset");
  diff(
      "locator_not_utf16",
      [](auto&, auto& c, auto& l) {
        patch_file(c, l.locators[0].platform_data_offset, {0x00, 0xD8, 'x', 0});  // a lone high surrogate
      },
      "parent locator 0 (W2ku) is unreadable: it is not valid UTF-16");
  diff(
      "locator_odd_length", [](auto&, auto& c, auto&) { patch_header(c, 576 + 8, be32(33)); },
      "parent locator 0 (W2ku) is unreadable: its length is odd");
  diff(
      "locator_overlaps_bat", [](auto&, auto& c, auto& l) { patch_header(c, 576 + 16, be64(l.table_offset)); },
      "overlaps parent locator 0 (W2ku)");
  return v;
}

TEST(VhdMalformed, EveryVariantIsRefusedClearlyAndLeftUnchanged) {
  auto all = variants();
  EXPECT_GE(all.size(), 20u);
  std::cout << "[ malformed VHD variants: " << all.size() << " ]\n";
  for (const Variant& var : all) {
    SCOPED_TRACE(var.name);
    TempDir dir;
    std::string path = var.make(dir);
    if (::testing::Test::HasFailure()) return;
    std::string before = sha256(path);
    for (auto access : {io::Access::ReadOnly, io::Access::ReadWrite}) {
      auto r = image::open_image(io::Env::posix(), path, {access, std::nullopt, disk::ParentPolicy::Require});
      ASSERT_FALSE(r) << var.name << " opened";
      EXPECT_NE(r.error().message().find(var.expect), std::string::npos)
          << var.name << ": expected \"" << var.expect << "\" in: " << r.error().what();
      EXPECT_EQ(r.error().path(), path);
      EXPECT_NE(r.error().code(), ReturnCode::Completed);
    }
    auto optional =
        image::open_image(io::Env::posix(), path, {io::Access::ReadOnly, std::nullopt, disk::ParentPolicy::Optional});
    EXPECT_EQ(optional.has_value(), var.optional_opens) << var.name;
    if (optional && var.optional_opens) {
      auto problems = (*optional)->check();
      EXPECT_FALSE(problems.empty());
      std::vector<std::byte> buf(512);
      EXPECT_FALSE((*optional)->read(0, buf)) << "a read through a missing or wrong parent succeeded";
    }
    optional = std::unexpected(Error(ReturnCode::Failed, "", ""));
    EXPECT_EQ(sha256(path), before) << var.name << ": the file changed";
  }
}

TEST(VhdMalformed, CheckListsEveryProblemNotJustTheFirst) {
  TempDir dir;
  std::string p = qemu_dynamic(dir);
  Layout l = layout_of(p);
  set_bat(p, l, 1, l.bat[0]);
  set_bat(p, l, 3, uint32_t((l.file_size + (8 << 20)) / 512));
  set_bat(p, l, 4, 1);
  Problems problems;
  auto f = io::Env::posix().open(p, io::Access::ReadOnly);
  ASSERT_TRUE(f);
  auto m = read_metadata(**f, problems);
  ASSERT_FALSE(m);
  std::string all;
  for (const auto& e : problems.errors) all += e + "\n";
  EXPECT_EQ(problems.errors.size(), 4u) << all;
  EXPECT_NE(all.find("BAT entry 3 points past the end"), std::string::npos) << all;
  EXPECT_NE(all.find("BAT entry 4 points into the dynamic header"), std::string::npos) << all;
  EXPECT_NE(all.find("BAT entries 0 and 1 overlap"), std::string::npos) << all;
  EXPECT_NE(all.find("BAT entries 0 and 4 overlap"), std::string::npos) << all;
  EXPECT_NE(m.error().message().find("and 1 more problems"), std::string::npos) << m.error().what();
}

}  // namespace
}  // namespace vhdkit::vhd::testing
