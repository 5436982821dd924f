// SPDX-License-Identifier: Apache-2.0
#include "cli/sizes.h"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>

namespace vhdkit::cli {
namespace {

constexpr std::array<char, 7> kUnits = {'B', 'K', 'M', 'G', 'T', 'P', 'E'};

std::optional<int> unit_exponent(std::string_view suffix) {
  if (suffix.empty()) return 0;
  // Accept "G", "GB", "GiB" alike: all binary, as qemu-img does.
  std::string s;
  for (char c : suffix) s += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (s.size() == 3 && s.substr(1) == "IB") s.resize(1);
  if (s.size() == 2 && s[1] == 'B' && s[0] != 'B') s.resize(1);
  if (s.size() != 1) return std::nullopt;
  for (size_t i = 0; i < kUnits.size(); ++i)
    if (s[0] == kUnits[i]) return static_cast<int>(i);
  return std::nullopt;
}

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data() + 2, text.data() + text.size(), value, 16);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
  }
  size_t digits = 0;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.'))
    ++digits;
  if (digits == 0) return std::nullopt;
  auto exponent = unit_exponent(text.substr(digits));
  if (!exponent) return std::nullopt;
  std::string_view number = text.substr(0, digits);
  if (number.find('.') == std::string_view::npos) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc() || end != number.data() + number.size()) return std::nullopt;
    int shift = 10 * *exponent;
    if (shift > 0 && value > (UINT64_MAX >> shift)) return std::nullopt;
    return value << shift;
  }
  double value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) return std::nullopt;
  double bytes = std::ldexp(value, 10 * *exponent);
  if (bytes >= 18446744073709551616.0 || bytes != std::floor(bytes)) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

std::string human_size(uint64_t bytes) {
  static constexpr std::array<const char*, 7> names = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  // Move to the next unit once the value would print as 1000 or more ("0.977 MiB", not "1e+03 KiB").
  size_t unit = 0;
  double value = static_cast<double>(bytes);
  while (unit + 1 < names.size() && value >= 999.5) {
    value /= 1024.0;
    ++unit;
  }
  if (unit == 0) return fmt::format("{} B", bytes);
  return fmt::format("{:.3g} {}", value, names[unit]);
}

std::string human_size_and_bytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} byte{}", bytes, bytes == 1 ? "" : "s");
  return fmt::format("{} ({} bytes)", human_size(bytes), bytes);
}

CLI::Validator size_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (parse_size(text)) return {};
        return fmt::format("'{}' is not a size (examples: 512, 0x200, 4K, 2M, 10G)", text);
      },
      "SIZE");
}

}  // namespace vhdkit::cli
