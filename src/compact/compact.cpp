// SPDX-License-Identifier: Apache-2.0
// The modes' names and numbers, and compact_image() = prepare() + run().
#include "compact/compact.h"

#include <fmt/format.h>

#include <array>
#include <cctype>

#include "compact/prepare.h"

namespace vhdkit::compact {
namespace {

constexpr std::array<std::pair<Mode, std::string_view>, 5> kModeNames{{
    {Mode::Full, "full"},
    {Mode::Quick, "quick"},
    {Mode::Retrim, "retrim"},
    {Mode::Pretrimmed, "pretrimmed"},
    {Mode::Prezeroed, "prezeroed"},
}};

}  // namespace

std::string_view to_string(Mode m) {
  for (auto [mode, name] : kModeNames)
    if (mode == m) return name;
  return "?";
}

std::optional<Mode> mode_from_string(std::string_view s) {
  std::string lower(s);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto [mode, name] : kModeNames)
    if (name == lower) return mode;
  return std::nullopt;
}

Result<Mode> mode_from_number(uint64_t value, const std::string& path) {
  for (auto [mode, name] : kModeNames)
    if (static_cast<uint64_t>(mode) == value) return mode;
  return fail(ReturnCode::InvalidParameter, path,
              fmt::format("Mode {} is not one of Full 0, Quick 1, Retrim 2, Pretrimmed 3, Prezeroed 4", value));
}

Result<Report> compact_image(io::Env& env, const std::string& path, const Options& options, Observer* observer) {
  VHDKIT_ASSIGN(auto prepared, prepare(env, path, options));
  return prepared->run(env, observer);
}

}  // namespace vhdkit::compact
