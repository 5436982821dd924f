// SPDX-License-Identifier: Apache-2.0
// Unit tests of the on-disk structures: encoding, checksums, geometry, the size rule, locators, bitmaps.
#include <gtest/gtest.h>

#include "vhd/parent_locator.h"
#include "vhd/vhd_create.h"
#include "vhd/vhd_format.h"
#include "vhd/vhd_image.h"

namespace vhdkit::vhd {
namespace {

TEST(VhdFormat, FooterRoundTripsAndChecksumCatchesAnyChangedByte) {
  Footer f = new_footer(DiskTypeCode::Dynamic, 64 << 20, 512);
  Bytes raw(kFooterSize);
  std::span<std::byte, kFooterSize> s(raw.data(), kFooterSize);
  encode_footer(f, s);
  seal(raw, kFooterChecksumOffset);
  Footer back = decode_footer(s);
  EXPECT_EQ(back.checksum, vhd_checksum(raw, kFooterChecksumOffset));
  EXPECT_EQ(back.current_size, uint64_t{64} << 20);
  EXPECT_EQ(back.data_offset, 512u);
  EXPECT_EQ(back.unique_id, f.unique_id);
  EXPECT_EQ(back.disk_type, 3u);
  EXPECT_TRUE(is_footer_cookie(raw));
  EXPECT_EQ(std::string(back.creator_app.data(), 4), "vkit");
  // Offsets straight from the spec: Current Size at 48, Disk Type at 60, Unique Id at 68.
  EXPECT_EQ(load_be<uint64_t>(raw.data() + 48), uint64_t{64} << 20);
  EXPECT_EQ(load_be<uint32_t>(raw.data() + 60), 3u);
  EXPECT_EQ(std::memcmp(raw.data() + 68, f.unique_id.bytes.data(), 16), 0);
  for (size_t i : {0u, 20u, 63u, 100u, 511u}) {
    Bytes bad = raw;
    bad[i] ^= std::byte{1};
    EXPECT_NE(vhd_checksum(bad, kFooterChecksumOffset), back.checksum) << "byte " << i;
  }
}

TEST(VhdFormat, ChecksumIsOnesComplementOfByteSumWithoutTheField) {
  Bytes raw(16, std::byte{0});
  raw[0] = std::byte{1};
  raw[15] = std::byte{2};
  raw[4] = std::byte{0xFF};  // inside the checksum field: ignored
  EXPECT_EQ(vhd_checksum(raw, 4), ~uint32_t{3});
}

TEST(VhdFormat, DynamicHeaderRoundTrips) {
  DynamicHeader h;
  h.cookie = {'c', 'x', 's', 'p', 'a', 'r', 's', 'e'};
  h.data_offset = kNoOffset;
  h.table_offset = 1536;
  h.header_version = kFormatVersion;
  h.max_table_entries = 33;
  h.block_size = kDefaultBlockSize;
  h.parent_unicode_name = u"C:\\base\\parent.vhd";
  h.locators[1] = {kPlatformW2ru, 512, 30, 0, 4096};
  Bytes raw(kDynamicHeaderSize);
  std::span<std::byte, kDynamicHeaderSize> s(raw.data(), kDynamicHeaderSize);
  encode_dynamic_header(h, s);
  seal(raw, kHeaderChecksumOffset);
  DynamicHeader back = decode_dynamic_header(s);
  EXPECT_EQ(back.table_offset, 1536u);
  EXPECT_EQ(back.max_table_entries, 33u);
  EXPECT_EQ(back.parent_unicode_name, h.parent_unicode_name);
  EXPECT_EQ(back.locators[1].platform_code, kPlatformW2ru);
  EXPECT_EQ(back.locators[1].platform_data_offset, 4096u);
  EXPECT_EQ(back.checksum, vhd_checksum(raw, kHeaderChecksumOffset));
  // Block Size at 32, Parent Unicode Name at 64 (UTF-16BE), locator 1 at 576 + 24.
  EXPECT_EQ(load_be<uint32_t>(raw.data() + 32), kDefaultBlockSize);
  EXPECT_EQ(load_be<uint16_t>(raw.data() + 64), u'C');
  EXPECT_EQ(load_be<uint32_t>(raw.data() + 600), kPlatformW2ru);
}

TEST(VhdFormat, GeometryFollowsTheSpecAndTheFixtures) {
  // Values recorded by Windows in the fixtures (SOURCES.md).
  EXPECT_EQ(geometry_for(10485760 / 512), (Geometry{301, 4, 17}));
  EXPECT_EQ(geometry_for(4194304 / 512), (Geometry{120, 4, 17}));
  EXPECT_EQ(geometry_for(136365211648 / 512), (Geometry{65278, 16, 255}));
  EXPECT_EQ(geometry_for(4212736 / 512), (Geometry{121, 4, 17}));
  EXPECT_EQ(geometry_for(~uint64_t{0}), kMaxGeometry);
}

TEST(VhdFormat, SizeRuleMatchesQemu) {
  Footer f;
  f.current_size = 10485760;
  f.geometry = {301, 4, 17};
  f.creator_app = {'w', 'i', 'n', ' '};
  EXPECT_EQ(virtual_size_of(f), 10485760u);
  f.creator_app = {'v', 'p', 'c', ' '};
  EXPECT_EQ(virtual_size_of(f), 10479616u);
  f.creator_app = {'d', '2', 'v', '\0'};  // not "d2v ": qemu uses CHS here
  EXPECT_EQ(size_source(f), SizeSource::Geometry);
  f.geometry = kMaxGeometry;  // the maximum geometry always means Current Size
  EXPECT_EQ(virtual_size_of(f), 10485760u);
}

TEST(VhdFormat, WriterGeometryIsExactOrMaximum) {
  Footer exact = new_footer(DiskTypeCode::Dynamic, 10479616, 512);  // 301/4/17 exactly
  EXPECT_EQ(exact.geometry, (Geometry{301, 4, 17}));
  Footer inexact = new_footer(DiskTypeCode::Dynamic, 64 << 20, 512);
  EXPECT_EQ(inexact.geometry, kMaxGeometry);
  EXPECT_EQ(virtual_size_of(inexact), uint64_t{64} << 20);
  EXPECT_EQ(virtual_size_of(exact), 10479616u);
}

TEST(VhdFormat, LocatorTextDecodes) {
  std::string why;
  Bytes le = utf16le_encode(u".\\parent.vhd");
  EXPECT_EQ(decode_locator_text(kPlatformW2ru, le, &why), ".\\parent.vhd");
  le.push_back(std::byte{0});
  EXPECT_FALSE(decode_locator_text(kPlatformW2ru, le, &why).has_value());
  EXPECT_NE(why.find("odd"), std::string::npos);
  std::string url = "file://localhost/srv/my%20disks/p.vhd";
  Bytes u8(reinterpret_cast<const std::byte*>(url.data()), reinterpret_cast<const std::byte*>(url.data()) + url.size());
  auto text = decode_locator_text(kPlatformMacX, u8, &why);
  ASSERT_TRUE(text);
  EXPECT_EQ(host_path_for(kPlatformMacX, *text, "/x"), "/srv/my disks/p.vhd");
}

TEST(VhdFormat, LocatorPathsResolveAgainstTheChildFolder) {
  EXPECT_EQ(host_path_for(kPlatformW2ru, ".\\parent.vhd", "/images/kids"), "/images/kids/parent.vhd");
  EXPECT_EQ(host_path_for(kPlatformW2ru, "..\\base\\p.vhd", "/images/kids"), "/images/base/p.vhd");
  EXPECT_EQ(host_path_for(kPlatformW2ru, "p.vhd", "/images"), "/images/p.vhd");
  EXPECT_EQ(host_path_for(kPlatformW2ku, "C:\\Projects\\p.vhd", "/images"), std::nullopt);
  EXPECT_EQ(host_path_for(kPlatformW2ku, "\\\\server\\share\\p.vhd", "/images"), std::nullopt);
  EXPECT_EQ(host_path_for(kPlatformW2ku, "/srv/p.vhd", "/images"), "/srv/p.vhd");
  EXPECT_EQ(windows_relative_path("/a/b/child.vhd", "/a/b/parent.vhd"), ".\\parent.vhd");
  EXPECT_EQ(windows_relative_path("/a/b/child.vhd", "/a/base/parent.vhd"), "..\\base\\parent.vhd");
}

TEST(VhdFormat, BitmapBitsAreMostSignificantFirst) {
  Bytes bitmap(bitmap_bytes(kDefaultBlockSize));
  EXPECT_EQ(bitmap.size(), 512u);
  EXPECT_EQ(bitmap_bytes(512 * 1024), 512u);
  EXPECT_EQ(bitmap_bytes(uint64_t{1} << 25), 8192u);
  set_sectors_present(bitmap, 1, 9);
  EXPECT_EQ(bitmap[0], std::byte{0x7F});
  EXPECT_EQ(bitmap[1], std::byte{0xC0});
  EXPECT_FALSE(sector_present(bitmap, 0));
  EXPECT_TRUE(sector_present(bitmap, 9));
  EXPECT_FALSE(sector_present(bitmap, 10));
}

}  // namespace
}  // namespace vhdkit::vhd
