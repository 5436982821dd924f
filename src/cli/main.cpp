// vhdkit: thin front end. Each subcommand parses its arguments, calls the library and prints.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"vhdkit: inspect, check and compact VHD and VHDX disk images in place"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vhdkit 0.1.0");
  auto commands = vhdkit::cli::register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, run] : commands) {
    if (sub->parsed()) return run();
  }
  return 2;
}
