// SPDX-License-Identifier: Apache-2.0
#include "vhdx/parent.h"

#include <algorithm>
#include <filesystem>

namespace vhdkit::vhdx {

namespace fs = std::filesystem;

namespace {

std::string forward_slashes(std::string s) {
  std::replace(s.begin(), s.end(), '\\', '/');
  return s;
}

}  // namespace

std::vector<std::string> parent_candidates(const ParentLocator& locator, const std::string& child_path) {
  std::vector<std::string> out;
  fs::path dir = fs::path(child_path).parent_path();
  if (auto rel = locator.get("relative_path")) {
    std::string p = forward_slashes(*rel);
    out.push_back((dir / p).lexically_normal().string());
  }
  // Windows volume and drive paths ("\\?\Volume{...}\x", "C:\x") name nothing on this host; a POSIX path
  // stored by a Linux writer does.
  for (const char* key : {"volume_path", "absolute_win32_path"}) {
    if (auto abs = locator.get(key)) {
      std::string p = forward_slashes(*abs);
      if (!p.empty() && p.front() == '/' && p.rfind("//", 0) != 0) out.push_back(p);
    }
  }
  return out;
}

std::string relative_parent_path(const std::string& child_absolute, const std::string& parent_absolute) {
  fs::path rel = fs::path(parent_absolute).lexically_relative(fs::path(child_absolute).parent_path());
  std::string s = rel.string();
  std::replace(s.begin(), s.end(), '/', '\\');
  if (s.rfind("..", 0) != 0) s = ".\\" + s;
  return s;
}

}  // namespace vhdkit::vhdx
