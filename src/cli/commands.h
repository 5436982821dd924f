#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <utility>
#include <vector>

namespace vhdkit::cli {

// A subcommand and the function that runs it (returns the process exit status).
using Command = std::pair<CLI::App*, std::function<int()>>;

std::vector<Command> register_commands(CLI::App& app);

}  // namespace vhdkit::cli
