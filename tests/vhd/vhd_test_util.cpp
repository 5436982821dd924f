// SPDX-License-Identifier: Apache-2.0
#include "vhd_test_util.h"
#include "image/open_image.h"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

namespace vhdkit::vhd::testing {

std::vector<std::byte> read_all(disk::VirtualDisk& d, size_t chunk) {
  std::vector<std::byte> out(d.virtual_size());
  for (uint64_t off = 0; off < out.size(); off += chunk) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, out.size() - off));
    auto s = d.read(off, std::span(out).subspan(off, n));
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().what());
    if (!s) break;
  }
  return out;
}

std::vector<std::byte> qemu_raw_bytes(const std::string& path, const TempDir& dir, const std::string& format) {
  std::string out = qemu_raw(path, dir, "qemu-raw.img", format);
  auto bytes = read_file(out);
  run_ok("rm -f " + q(out));
  return bytes;
}

std::vector<disk::MapExtent> qemu_map(const std::string& path, const std::string& format) {
  auto j = nlohmann::json::parse(run_ok("qemu-img map -U -f " + format + " --output=json " + q(path)));
  std::vector<disk::MapExtent> m;
  for (const auto& e : j) {
    disk::MapExtent x;
    x.start = e["start"];
    x.length = e["length"];
    x.depth = e["depth"];
    x.present = e["present"];
    x.zero = e["zero"];
    x.data = e["data"];
    if (e.contains("offset")) x.offset = e["offset"].get<uint64_t>();
    m.push_back(x);
  }
  return m;
}

uint64_t qemu_virtual_size(const std::string& path, const std::string& format) {
  auto j = nlohmann::json::parse(run_ok("qemu-img info -U -f " + format + " --output=json " + q(path)));
  return j["virtual-size"];
}

std::string map_text(const std::vector<disk::MapExtent>& m) {
  std::string s;
  for (const auto& e : m)
    s += fmt::format("{{start {} len {} depth {} present {} zero {} data {} offset {}}}\n", e.start, e.length, e.depth,
                     e.present, e.zero, e.data, e.offset ? std::to_string(*e.offset) : "-");
  return s;
}

static void reseal(const std::string& path, uint64_t offset, size_t size, size_t checksum_offset) {
  auto all = read_file(path);
  std::span<std::byte> s(all.data() + offset, size);
  seal(s, checksum_offset);
  std::vector<uint8_t> sum(4);
  std::memcpy(sum.data(), s.data() + checksum_offset, 4);
  patch_file(path, offset + checksum_offset, sum);
}
void reseal_footer(const std::string& path, uint64_t offset) {
  reseal(path, offset, kFooterSize, kFooterChecksumOffset);
}
void reseal_header(const std::string& path, uint64_t offset) {
  reseal(path, offset, kDynamicHeaderSize, kHeaderChecksumOffset);
}

std::vector<uint8_t> be32(uint32_t v) { return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)}; }
std::vector<uint8_t> be64(uint64_t v) {
  std::vector<uint8_t> out;
  for (int i = 7; i >= 0; --i) out.push_back(uint8_t(v >> (8 * i)));
  return out;
}

std::vector<std::byte> pattern(size_t n, uint8_t seed) {
  std::vector<std::byte> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    v[i] = std::byte(uint8_t(x >> 16));
  }
  return v;
}

}  // namespace vhdkit::vhd::testing
