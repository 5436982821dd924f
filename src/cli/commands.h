// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <utility>
#include <vector>

namespace vhdkit::cli {

// A subcommand and the function that runs it (returns the process exit status).
using Command = std::pair<CLI::App*, std::function<int()>>;

std::vector<Command> register_commands(CLI::App& app);

// One per subcommand, each defined in its cmd_<name>.cpp.
Command register_info(CLI::App& app);
Command register_check(CLI::App& app);
Command register_map(CLI::App& app);
Command register_compare(CLI::App& app);
Command register_create(CLI::App& app);
Command register_write(CLI::App& app);
Command register_compact(CLI::App& app);
Command register_jobs(CLI::App& app);

}  // namespace vhdkit::cli
