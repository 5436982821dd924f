// SPDX-License-Identifier: Apache-2.0
// vhdkit create [--format vhd|vhdx] [--type fixed|dynamic|differencing] [--size N] [--block-size N]
//               [--parent P] PATH: a new image, through image::create_image.
#include <fmt/format.h>

#include <memory>

#include "cli/commands.h"
#include "cli/image_args.h"
#include "cli/report.h"
#include "cli/sizes.h"
#include "image/open_image.h"

namespace vhdkit::cli {
namespace {

struct CreateArgs {
  std::string path, format = "vhd", type, size, block_size, parent;
};

std::optional<disk::DiskType> type_from_string(const std::string& text) {
  for (auto t : {disk::DiskType::Fixed, disk::DiskType::Dynamic, disk::DiskType::Differencing})
    if (text == disk::to_string(t)) return t;
  return std::nullopt;
}

Result<disk::CreateOptions> to_options(const CreateArgs& args) {
  disk::CreateOptions o;
  o.format = disk::format_from_string(args.format).value_or(disk::Format::Vhd);
  // --parent alone means differencing; a differencing disk without a parent means nothing.
  o.type = args.type.empty() ? (args.parent.empty() ? disk::DiskType::Dynamic : disk::DiskType::Differencing)
                             : *type_from_string(args.type);
  if (o.type == disk::DiskType::Differencing) {
    if (args.parent.empty()) return fail(ReturnCode::InvalidParameter, args.path, "a differencing disk needs --parent");
    if (!args.size.empty())
      return fail(ReturnCode::InvalidParameter, args.path,
                  "a differencing disk has its parent's size: leave out --size");
    o.parent_path = args.parent;
  } else {
    if (!args.parent.empty())
      return fail(ReturnCode::InvalidParameter, args.path,
                  fmt::format("--parent is only for differencing disks, not {} ones", disk::to_string(o.type)));
    if (args.size.empty()) return fail(ReturnCode::InvalidParameter, args.path, "--size is required (e.g. 10G)");
    o.virtual_size = *parse_size(args.size);
  }
  if (!args.block_size.empty()) {
    uint64_t block = *parse_size(args.block_size);
    if (block > UINT32_MAX)
      return fail(ReturnCode::InvalidParameter, args.path,
                  fmt::format("--block-size {} is too large", args.block_size));
    o.block_size = static_cast<uint32_t>(block);
  }
  return o;
}

int run_create(const CreateArgs& args) {
  auto options = to_options(args);
  if (!options) return report(options.error());
  auto created = image::create_image(io::Env::posix(), args.path, *options);
  if (!created) return report(created.error());
  if (auto s = (*created)->flush(); !s) return report(s.error());
  disk::DiskInfo i = (*created)->info();
  fmt::print("created {}: {} {}, virtual size {}", args.path, disk::to_string(i.format), disk::to_string(i.type),
             human_size_and_bytes(i.virtual_size));
  if (i.block_size) fmt::print(", {} blocks", human_size(i.block_size));
  if (i.parent_path) fmt::print(", parent {}", *i.parent_path);
  fmt::print("\n");
  return 0;
}

}  // namespace

Command register_create(CLI::App& app) {
  auto args = std::make_shared<CreateArgs>();
  auto* sub = app.add_subcommand("create", "Create a new fixed, dynamic or differencing disk image");
  sub->add_option("PATH", args->path, "the image to create (an existing file is never overwritten)")->required();
  sub->add_option("--format", args->format, "image format (default: vhd)")
      ->check(CLI::IsMember({"vhd", "vhdx"}))
      ->type_name("FORMAT");
  sub->add_option("--type", args->type, "disk type (default: dynamic, or differencing with --parent)")
      ->check(CLI::IsMember({"fixed", "dynamic", "differencing"}))
      ->type_name("TYPE");
  sub->add_option("--size", args->size, "virtual size, e.g. 10G (not for differencing disks)")->check(size_validator());
  sub->add_option("--block-size", args->block_size, "block size, e.g. 2M (default: the format's)")
      ->check(size_validator());
  sub->add_option("--parent", args->parent, "the parent image of a differencing disk");
  return {sub, [args] { return run_create(*args); }};
}

}  // namespace vhdkit::cli
