// SPDX-License-Identifier: Apache-2.0
#include "core/guid.h"

#include <fmt/format.h>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid.hpp>

#include <cstring>

namespace vhdkit {

Guid load_guid(const std::byte* p) {
  Guid g;
  std::memcpy(g.bytes.data(), p, 16);
  return g;
}

void store_guid(std::byte* p, const Guid& g) { std::memcpy(p, g.bytes.data(), 16); }

bool Guid::is_zero() const {
  for (auto b : bytes)
    if (b != std::byte{0}) return false;
  return true;
}

Guid Guid::random() {
  thread_local boost::uuids::random_generator gen;
  boost::uuids::uuid u = gen();
  Guid g;
  std::memcpy(g.bytes.data(), u.data, 16);
  return g;
}

static std::string hex(const std::byte* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += fmt::format("{:02x}", static_cast<unsigned>(p[i]));
  return s;
}

std::string Guid::to_string_be() const {
  const std::byte* b = bytes.data();
  return fmt::format("{}-{}-{}-{}-{}", hex(b, 4), hex(b + 4, 2), hex(b + 6, 2), hex(b + 8, 2), hex(b + 10, 6));
}

std::string Guid::to_string_ms() const {
  std::array<std::byte, 16> r = bytes;
  std::byte b[16];
  std::memcpy(b, r.data(), 16);
  std::byte d1[4] = {b[3], b[2], b[1], b[0]};
  std::byte d2[2] = {b[5], b[4]};
  std::byte d3[2] = {b[7], b[6]};
  return fmt::format("{}-{}-{}-{}-{}", hex(d1, 4), hex(d2, 2), hex(d3, 2), hex(b + 8, 2), hex(b + 10, 6));
}

std::optional<Guid> Guid::parse_ms(std::string_view text) {
  if (text.size() == 38 && text.front() == '{' && text.back() == '}') text = text.substr(1, 36);
  if (text.size() != 36) return std::nullopt;
  std::byte be[16];
  size_t k = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    auto nib = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = nib(text[i]), lo = nib(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    be[k++] = static_cast<std::byte>(hi * 16 + lo);
    i += 2;
  }
  Guid g;
  std::byte* o = g.bytes.data();
  o[0] = be[3];
  o[1] = be[2];
  o[2] = be[1];
  o[3] = be[0];
  o[4] = be[5];
  o[5] = be[4];
  o[6] = be[7];
  o[7] = be[6];
  std::memcpy(o + 8, be + 8, 8);
  return g;
}

}  // namespace vhdkit
