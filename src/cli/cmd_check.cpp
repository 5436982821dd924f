// SPDX-License-Identifier: Apache-2.0
// vhdkit check [--json] [--format F] IMAGE: every structural problem found; exit 0 only when clean.
#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "cli/commands.h"
#include "cli/image_args.h"
#include "cli/json_output.h"
#include "cli/report.h"

namespace vhdkit::cli {
namespace {

struct CheckArgs {
  ImageRequest image;
  bool json = false;
};

std::vector<std::string> find_problems(disk::VirtualDisk& disk) {
  std::vector<std::string> problems = disk.check();
  disk::DiskInfo i = disk.info();
  // Opened with ParentPolicy::Optional, a differencing disk whose parent is gone still opens; for check
  // that is a problem like any other (reads of unallocated blocks cannot be answered).
  if (i.type == disk::DiskType::Differencing && disk.parent() == nullptr) {
    std::string parent = i.parent_path.value_or("");
    bool already_said = std::any_of(problems.begin(), problems.end(),
                                    [&](const std::string& p) { return p.find("parent") != std::string::npos; });
    if (!already_said)
      problems.push_back(parent.empty() ? "differencing disk records no parent"
                                        : fmt::format("parent image {} cannot be found or opened", parent));
  }
  return problems;
}

void print_result(const CheckArgs& args, const std::string& format, const std::vector<std::string>& problems) {
  if (args.json) {
    Json j;
    j["filename"] = args.image.path;
    if (!format.empty()) j["format"] = format;
    j["clean"] = problems.empty();
    j["problems"] = problems;
    print_json(j);
    return;
  }
  if (problems.empty()) {
    fmt::print("{}: no problems found\n", args.image.path);
    return;
  }
  fmt::print("{}: {} problem{} found:\n", args.image.path, problems.size(), problems.size() == 1 ? "" : "s");
  for (const auto& p : problems) fmt::print("  {}\n", p);
}

int run_check(const CheckArgs& args) {
  ImageRequest request = args.image;
  request.parents = disk::ParentPolicy::Optional;
  auto opened = open_image(request);
  if (!opened) {
    // An image too broken to open is the first problem check names.
    if (args.json) print_result(args, "", {opened.error().message()});
    return report(opened.error());
  }
  auto problems = find_problems(**opened);
  print_result(args, std::string(disk::to_string((*opened)->info().format)), problems);
  return problems.empty() ? 0 : kExitProblemsFound;
}

}  // namespace

Command register_check(CLI::App& app) {
  auto args = std::make_shared<CheckArgs>();
  auto* sub = app.add_subcommand("check",
                                 "Find every structural problem in an image (exit status 0: clean, 1: problems found)");
  add_image_arguments(*sub, args->image);
  sub->add_flag("--json", args->json, "print JSON: {filename, format, clean, problems[]}");
  return {sub, [args] { return run_check(*args); }};
}

}  // namespace vhdkit::cli
