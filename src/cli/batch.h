// SPDX-License-Identifier: Apache-2.0
// `vhdkit compact` over many images (issue 15): --recursive folders, --jobs in parallel, thresholds judged
// from a dry run, a time budget per image and a deadline for the run, and a report (JSON or CSV). The
// subcommand routes here (cmd_compact.cpp) when one of these options is given.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

#include "compact/compact.h"

namespace vhdkit::cli {

enum class Recursion { Off, On };
enum class Symlinks { StayInTree, Follow };

struct BatchArgs {
  Recursion recursion = Recursion::Off;
  Symlinks symlinks = Symlinks::StayInTree;
  unsigned jobs = 1;
  std::string min_size;  // parse_size() text; empty: no threshold
  double min_gain = 0;   // percent of the file size, judged from the dry run; 0: no dry run first
  std::string max_time;  // duration text ("90s", "5m"); empty: no budget
  std::string deadline;  // duration from the start of the run; empty: none
  std::optional<std::string> report;
  std::optional<std::string> svg_before, svg_after;
  std::vector<CLI::Option*> options;  // the options above, to tell whether any was given
  bool active() const;
};

// What the plain `compact` command already parsed.
struct BatchContext {
  std::vector<std::string> paths;
  compact::Mode mode = compact::Mode::Full;
  compact::Action action = compact::Action::Compact;
  std::optional<std::string> log;
  std::optional<std::string> service_socket;
  bool json = false;
};

void add_batch_options(CLI::App& sub, BatchArgs& args);
int run_batch(const BatchArgs& args, const BatchContext& context);

// "90", "90s", "5m", "1.5h" -> milliseconds; nullopt when not a duration.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace vhdkit::cli
