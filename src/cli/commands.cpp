#include "cli/commands.h"

namespace vhdkit::cli {

std::vector<Command> register_commands(CLI::App& app) {
  std::vector<Command> commands;
  (void)app;
  return commands;
}

}  // namespace vhdkit::cli
