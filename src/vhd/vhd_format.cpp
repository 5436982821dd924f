// SPDX-License-Identifier: Apache-2.0
#include "vhd/vhd_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace vhdkit::vhd {
namespace {

template <size_t N>
std::array<char, N> load_chars(const std::byte* p) {
  std::array<char, N> a{};
  std::memcpy(a.data(), p, N);
  return a;
}
template <size_t N>
void store_chars(std::byte* p, const std::array<char, N>& a) {
  std::memcpy(p, a.data(), N);
}

}  // namespace

Geometry geometry_for(uint64_t total_sectors) {
  // The spec's algorithm: prefer 17 sectors per track (old BIOS geometry), growing to 31 and then 63
  // when the cylinder count would overflow 1024 per head, and 255/16 for the largest disks.
  total_sectors = std::min(total_sectors, kMaxGeometry.sectors());
  uint64_t spt, heads, cylinders_times_heads;
  if (total_sectors >= uint64_t{65535} * 16 * 63) {
    spt = 255;
    heads = 16;
    cylinders_times_heads = total_sectors / spt;
  } else {
    spt = 17;
    cylinders_times_heads = total_sectors / spt;
    heads = std::max<uint64_t>((cylinders_times_heads + 1023) / 1024, 4);
    if (cylinders_times_heads >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cylinders_times_heads = total_sectors / spt;
    }
    if (cylinders_times_heads >= heads * 1024) {
      spt = 63;
      heads = 16;
      cylinders_times_heads = total_sectors / spt;
    }
  }
  return Geometry{static_cast<uint16_t>(cylinders_times_heads / heads), static_cast<uint8_t>(heads),
                  static_cast<uint8_t>(spt)};
}

uint32_t vhd_checksum(std::span<const std::byte> raw, size_t checksum_offset) {
  uint32_t sum = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (i >= checksum_offset && i < checksum_offset + 4) continue;
    sum += static_cast<uint8_t>(raw[i]);
  }
  return ~sum;
}

void seal(std::span<std::byte> raw, size_t checksum_offset) {
  store_be<uint32_t>(raw.data() + checksum_offset, vhd_checksum(raw, checksum_offset));
}

Footer decode_footer(std::span<const std::byte, kFooterSize> raw) {
  const std::byte* p = raw.data();
  Footer f;
  f.cookie = load_chars<8>(p + 0);
  f.features = load_be<uint32_t>(p + 8);
  f.format_version = load_be<uint32_t>(p + 12);
  f.data_offset = load_be<uint64_t>(p + 16);
  f.timestamp = load_be<uint32_t>(p + 24);
  f.creator_app = load_chars<4>(p + 28);
  f.creator_version = load_be<uint32_t>(p + 32);
  f.creator_host_os = load_chars<4>(p + 36);
  f.original_size = load_be<uint64_t>(p + 40);
  f.current_size = load_be<uint64_t>(p + 48);
  f.geometry.cylinders = load_be<uint16_t>(p + 56);
  f.geometry.heads = static_cast<uint8_t>(p[58]);
  f.geometry.sectors_per_track = static_cast<uint8_t>(p[59]);
  f.disk_type = load_be<uint32_t>(p + 60);
  f.checksum = load_be<uint32_t>(p + 64);
  f.unique_id = load_guid(p + 68);
  f.saved_state = static_cast<uint8_t>(p[84]);
  return f;
}

void encode_footer(const Footer& f, std::span<std::byte, kFooterSize> raw) {
  std::byte* p = raw.data();
  std::fill(raw.begin(), raw.end(), std::byte{0});
  store_chars(p + 0, f.cookie);
  store_be(p + 8, f.features);
  store_be(p + 12, f.format_version);
  store_be(p + 16, f.data_offset);
  store_be(p + 24, f.timestamp);
  store_chars(p + 28, f.creator_app);
  store_be(p + 32, f.creator_version);
  store_chars(p + 36, f.creator_host_os);
  store_be(p + 40, f.original_size);
  store_be(p + 48, f.current_size);
  store_be(p + 56, f.geometry.cylinders);
  p[58] = std::byte{f.geometry.heads};
  p[59] = std::byte{f.geometry.sectors_per_track};
  store_be(p + 60, f.disk_type);
  store_be(p + 64, f.checksum);
  store_guid(p + 68, f.unique_id);
  p[84] = std::byte{f.saved_state};
}

DynamicHeader decode_dynamic_header(std::span<const std::byte, kDynamicHeaderSize> raw) {
  const std::byte* p = raw.data();
  DynamicHeader h;
  h.cookie = load_chars<8>(p + 0);
  h.data_offset = load_be<uint64_t>(p + 8);
  h.table_offset = load_be<uint64_t>(p + 16);
  h.header_version = load_be<uint32_t>(p + 24);
  h.max_table_entries = load_be<uint32_t>(p + 28);
  h.block_size = load_be<uint32_t>(p + 32);
  h.checksum = load_be<uint32_t>(p + 36);
  h.parent_unique_id = load_guid(p + 40);
  h.parent_timestamp = load_be<uint32_t>(p + 56);
  h.reserved = load_be<uint32_t>(p + 60);
  for (size_t i = 0; i < kParentNameBytes / 2; ++i) {
    char16_t c = load_be<uint16_t>(p + 64 + 2 * i);
    if (c == 0) break;
    h.parent_unicode_name.push_back(c);
  }
  for (size_t i = 0; i < kParentLocatorCount; ++i) {
    const std::byte* e = p + 576 + 24 * i;
    ParentLocator& l = h.locators[i];
    l.platform_code = load_be<uint32_t>(e + 0);
    l.platform_data_space = load_be<uint32_t>(e + 4);
    l.platform_data_length = load_be<uint32_t>(e + 8);
    l.reserved = load_be<uint32_t>(e + 12);
    l.platform_data_offset = load_be<uint64_t>(e + 16);
  }
  return h;
}

void encode_dynamic_header(const DynamicHeader& h, std::span<std::byte, kDynamicHeaderSize> raw) {
  std::byte* p = raw.data();
  std::fill(raw.begin(), raw.end(), std::byte{0});
  store_chars(p + 0, h.cookie);
  store_be(p + 8, h.data_offset);
  store_be(p + 16, h.table_offset);
  store_be(p + 24, h.header_version);
  store_be(p + 28, h.max_table_entries);
  store_be(p + 32, h.block_size);
  store_be(p + 36, h.checksum);
  store_guid(p + 40, h.parent_unique_id);
  store_be(p + 56, h.parent_timestamp);
  store_be(p + 60, h.reserved);
  size_t n = std::min(h.parent_unicode_name.size(), kParentNameBytes / 2);
  for (size_t i = 0; i < n; ++i) store_be<uint16_t>(p + 64 + 2 * i, h.parent_unicode_name[i]);
  for (size_t i = 0; i < kParentLocatorCount; ++i) {
    std::byte* e = p + 576 + 24 * i;
    const ParentLocator& l = h.locators[i];
    store_be(e + 0, l.platform_code);
    store_be(e + 4, l.platform_data_space);
    store_be(e + 8, l.platform_data_length);
    store_be(e + 12, l.reserved);
    store_be(e + 16, l.platform_data_offset);
  }
}

bool is_footer_cookie(std::span<const std::byte> raw) {
  return raw.size() >= 8 && std::memcmp(raw.data(), "conectix", 8) == 0;
}
bool is_header_cookie(std::span<const std::byte> raw) {
  return raw.size() >= 8 && std::memcmp(raw.data(), "cxsparse", 8) == 0;
}

std::string chars_text(std::span<const char> chars) {
  std::string s;
  for (char c : chars) {
    if (c == '\0') break;
    s += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return s;
}

std::string fourcc_text(uint32_t code) {
  char c[4] = {char(code >> 24), char(code >> 16), char(code >> 8), char(code)};
  return chars_text(c);
}

SizeSource size_source(const Footer& f) {
  if (f.geometry == kMaxGeometry) return SizeSource::CurrentSize;
  // Creators that size their disks by Current Size (qemu's list): Hyper-V/Windows, qemu with
  // force_size, Disk2vhd, XenConverter, XenServer ("tap" NUL-padded). Note "d2v\0" is not "d2v ".
  static constexpr std::array<std::array<char, 4>, 5> kCurrentSizeCreators{
      {{'w', 'i', 'n', ' '}, {'q', 'e', 'm', '2'}, {'d', '2', 'v', ' '}, {'C', 'T', 'X', 'S'}, {'t', 'a', 'p', '\0'}}};
  for (const auto& c : kCurrentSizeCreators)
    if (c == f.creator_app) return SizeSource::CurrentSize;
  return SizeSource::Geometry;
}

uint64_t virtual_size_of(const Footer& f) {
  uint64_t sectors = size_source(f) == SizeSource::CurrentSize ? f.current_size / kSectorSize : f.geometry.sectors();
  return sectors * kSectorSize;
}

}  // namespace vhdkit::vhd
