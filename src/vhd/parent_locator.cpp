// SPDX-License-Identifier: Apache-2.0
#include "vhd/parent_locator.h"

#include <cctype>
#include <filesystem>

namespace vhdkit::vhd {

namespace fs = std::filesystem;

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
    std::optional<std::string> utf8;
    if (valid_utf16(text)) utf8 = utf16_to_utf8(text);
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

std::optional<std::string> host_path_for(uint32_t platform_code, std::string_view text, const std::string& child_dir) {
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
