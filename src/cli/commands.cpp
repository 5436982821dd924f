// SPDX-License-Identifier: Apache-2.0
#include "cli/commands.h"

namespace vhdkit::cli {

std::vector<Command> register_commands(CLI::App& app) {
  std::vector<Command> commands;
  commands.push_back(register_info(app));
  commands.push_back(register_check(app));
  commands.push_back(register_map(app));
  commands.push_back(register_compare(app));
  commands.push_back(register_create(app));
  commands.push_back(register_write(app));
  commands.push_back(register_compact(app));
  commands.push_back(register_jobs(app));
  return commands;
}

}  // namespace vhdkit::cli
