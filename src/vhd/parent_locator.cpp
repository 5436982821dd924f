#include "vhd/parent_locator.h"

#include <cctype>
#include <filesystem>

namespace vhdkit::vhd {

namespace fs = std::filesystem;

std::optional<std::string> utf16_to_utf8(std::u16string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    uint32_t c = s[i];
    if (c >= 0xD800 && c <= 0xDBFF) {
      if (i + 1 >= s.size() || s[i + 1] < 0xDC00 || s[i + 1] > 0xDFFF) return std::nullopt;
      c = 0x10000 + ((c - 0xD800) << 10) + (uint32_t(s[++i]) - 0xDC00);
    } else if (c >= 0xDC00 && c <= 0xDFFF) {
      return std::nullopt;
    }
    if (c < 0x80) {
      out += char(c);
    } else if (c < 0x800) {
      out += char(0xC0 | (c >> 6));
      out += char(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += char(0xE0 | (c >> 12));
      out += char(0x80 | ((c >> 6) & 0x3F));
      out += char(0x80 | (c & 0x3F));
    } else {
      out += char(0xF0 | (c >> 18));
      out += char(0x80 | ((c >> 12) & 0x3F));
      out += char(0x80 | ((c >> 6) & 0x3F));
      out += char(0x80 | (c & 0x3F));
    }
  }
  return out;
}

std::u16string utf8_to_utf16(std::string_view s) {
  // Host paths are bytes; invalid UTF-8 is carried through as U+FFFD rather than refused.
  std::u16string out;
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<uint8_t>(s[i]);
    uint32_t c;
    size_t n;
    if (b < 0x80) c = b, n = 1;
    else if ((b >> 5) == 0x6) c = b & 0x1F, n = 2;
    else if ((b >> 4) == 0xE) c = b & 0x0F, n = 3;
    else if ((b >> 3) == 0x1E) c = b & 0x07, n = 4;
    else c = 0xFFFD, n = 1;
    if (n > 1) {
      if (i + n > s.size()) {
        c = 0xFFFD, n = 1;
      } else {
        for (size_t k = 1; k < n; ++k) {
          auto cb = static_cast<uint8_t>(s[i + k]);
          if ((cb >> 6) != 0x2) {
            c = 0xFFFD, n = 1;
            break;
          }
          c = (c << 6) | (cb & 0x3F);
        }
      }
    }
    i += n;
    if (c >= 0x10000) {
      c -= 0x10000;
      out += char16_t(0xD800 + (c >> 10));
      out += char16_t(0xDC00 + (c & 0x3FF));
    } else {
      out += char16_t(c);
    }
  }
  return out;
}

Bytes encode_utf16le(std::u16string_view s) {
  Bytes out(s.size() * 2);
  for (size_t i = 0; i < s.size(); ++i) store_le<uint16_t>(out.data() + 2 * i, s[i]);
  return out;
}

static bool is_windows_code(uint32_t code) {
  return code == kPlatformW2ku || code == kPlatformW2ru || code == kPlatformWi2k || code == kPlatformWi2r;
}

std::optional<std::string> decode_locator_text(uint32_t platform_code, std::span<const std::byte> data,
                                               std::string* why) {
  if (is_windows_code(platform_code)) {
    if (data.size() % 2 != 0) {
      *why = "its length is odd, so it cannot be UTF-16";
      return std::nullopt;
    }
    std::u16string text;
    for (size_t i = 0; i + 1 < data.size(); i += 2) {
      char16_t c = load_le<uint16_t>(data.data() + i);
      if (c == 0) break;  // some writers include the terminating NUL in the length
      text += c;
    }
    auto utf8 = utf16_to_utf8(text);
    if (!utf8) *why = "it is not valid UTF-16 (an unpaired surrogate)";
    return utf8;
  }
  if (platform_code == kPlatformMacX) {
    std::string text(reinterpret_cast<const char*>(data.data()), data.size());
    if (auto nul = text.find('\0'); nul != std::string::npos) text.resize(nul);
    return text;
  }
  *why = "its platform code is not one we can read";
  return std::nullopt;
}

static std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += char(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<std::string> host_path_for(uint32_t platform_code, std::string_view text,
                                         const std::string& child_dir) {
  if (text.empty()) return std::nullopt;
  if (platform_code == kPlatformMacX) {
    // file://localhost/path or file:///path
    constexpr std::string_view kScheme = "file://";
    if (!text.starts_with(kScheme)) return std::nullopt;
    std::string_view rest = text.substr(kScheme.size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    return percent_decode(rest.substr(slash));
  }
  std::string p(text);
  for (char& c : p)
    if (c == '\\') c = '/';
  bool drive_letter = p.size() >= 2 && std::isalpha(static_cast<unsigned char>(p[0])) && p[1] == ':';
  if (drive_letter || p.starts_with("//")) return std::nullopt;  // C:\... or a UNC share
  if (platform_code == kPlatformW2ru || platform_code == kPlatformWi2r) {
    if (p.starts_with("/")) return p;
    return (fs::path(child_dir.empty() ? "." : child_dir) / p).lexically_normal().string();
  }
  if (p.starts_with("/")) return p;  // an absolute path written on a POSIX host (our writer does)
  return std::nullopt;
}

std::string windows_relative_path(const std::string& child_path, const std::string& parent_path) {
  fs::path child_dir = fs::path(child_path).parent_path();
  fs::path rel = fs::path(parent_path).lexically_relative(child_dir);
  if (rel.empty()) rel = fs::path(parent_path).filename();
  std::string s = rel.string();
  for (char& c : s)
    if (c == '/') c = '\\';
  if (!s.starts_with("..")) s = ".\\" + s;
  return s;
}

}  // namespace vhdkit::vhd
