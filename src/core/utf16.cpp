// SPDX-License-Identifier: Apache-2.0
#include "core/utf16.h"

namespace vhdkit {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

bool is_high(char32_t c) { return c >= 0xD800 && c <= 0xDBFF; }
bool is_low(char32_t c) { return c >= 0xDC00 && c <= 0xDFFF; }

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// Decodes one code point at s[i], advancing i; malformed input (bad lead or continuation bytes, truncated,
// overlong, surrogates, past U+10FFFF) gives U+FFFD and advances by one byte.
char32_t next_code_point(std::string_view s, size_t& i) {
  auto b = static_cast<unsigned char>(s[i]);
  size_t n;
  char32_t c, min;
  if (b < 0x80) {
    ++i;
    return b;
  } else if ((b >> 5) == 0x6) {
    c = b & 0x1F, n = 2, min = 0x80;
  } else if ((b >> 4) == 0xE) {
    c = b & 0x0F, n = 3, min = 0x800;
  } else if ((b >> 3) == 0x1E) {
    c = b & 0x07, n = 4, min = 0x10000;
  } else {
    ++i;
    return kReplacement;
  }
  if (i + n > s.size()) {
    ++i;
    return kReplacement;
  }
  for (size_t k = 1; k < n; ++k) {
    auto cb = static_cast<unsigned char>(s[i + k]);
    if ((cb >> 6) != 0x2) {
      ++i;
      return kReplacement;
    }
    c = (c << 6) | (cb & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
    ++i;
    return kReplacement;
  }
  i += n;
  return c;
}

}  // namespace

std::string utf16_to_utf8(std::u16string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t c = s[i];
    if (is_high(c) && i + 1 < s.size() && is_low(s[i + 1])) {
      c = 0x10000 + ((c - 0xD800) << 10) + (char32_t(s[++i]) - 0xDC00);
    } else if (is_high(c) || is_low(c)) {
      c = kReplacement;
    }
    append_utf8(out, c);
  }
  return out;
}

bool valid_utf16(std::u16string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (is_high(s[i])) {
      if (i + 1 >= s.size() || !is_low(s[i + 1])) return false;
      ++i;
    } else if (is_low(s[i])) {
      return false;
    }
  }
  return true;
}

std::u16string utf8_to_utf16(std::string_view s) {
  std::u16string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t c = next_code_point(s, i);
    if (c >= 0x10000) {
      c -= 0x10000;
      out += static_cast<char16_t>(0xD800 + (c >> 10));
      out += static_cast<char16_t>(0xDC00 + (c & 0x3FF));
    } else {
      out += static_cast<char16_t>(c);
    }
  }
  return out;
}

std::u16string utf16le_decode(std::span<const std::byte> bytes) {
  std::u16string out;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    auto c = static_cast<char16_t>(load_le<uint16_t>(bytes.data() + i));
    if (c == 0) break;
    out += c;
  }
  return out;
}

Bytes utf16le_encode(std::u16string_view s) {
  Bytes out(s.size() * 2);
  for (size_t i = 0; i < s.size(); ++i) store_le<uint16_t>(out.data() + 2 * i, s[i]);
  return out;
}

std::string utf16le_to_utf8(std::span<const std::byte> bytes) { return utf16_to_utf8(utf16le_decode(bytes)); }
Bytes utf8_to_utf16le(std::string_view s) { return utf16le_encode(utf8_to_utf16(s)); }

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) append_utf8(out, next_code_point(s, i));
  return out;
}

}  // namespace vhdkit
