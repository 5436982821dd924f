// SPDX-License-Identifier: Apache-2.0
// vhdkit: thin front end. Each subcommand parses its arguments, calls the library and prints.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/report.h"
#include "core/return_code.h"
#include "core/version.h"

namespace {

// A bad command line: the problem, then the usage of the (sub)command that was being parsed.
std::string usage_failure(const CLI::App* app, const CLI::Error& e) {
  return fmt::format("vhdkit: {}\n\n{}", e.what(), app->help());
}

bool is_subcommand(CLI::App& app, const std::string& name) {
  return !app.get_subcommands([&](const CLI::App* sub) { return sub->check_name(name); }).empty();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vhdkit: inspect, check and compact VHD and VHDX disk images in place"};
  app.name("vhdkit");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("vhdkit ") + vhdkit::kVersion);
  app.failure_message(usage_failure);
  auto commands = vhdkit::cli::register_commands(app);
  try {
    // CLI11 would only say "A subcommand is required" for a misspelt one: name it instead.
    if (argc > 1 && argv[1][0] != '-' && !is_subcommand(app, argv[1]))
      throw CLI::ExtrasError({argv[1] + std::string(" (not a vhdkit subcommand)")});
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int status = app.exit(e);
    // --help and --version end parsing with status 0; every real parse error is a usage error.
    return status == 0 ? 0 : vhdkit::cli::exit_status(vhdkit::ReturnCode::InvalidParameter);
  }
  for (auto& [sub, run] : commands) {
    if (sub->parsed()) return run();
  }
  return vhdkit::cli::exit_status(vhdkit::ReturnCode::InvalidParameter);
}
