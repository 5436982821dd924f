// SPDX-License-Identifier: Apache-2.0
// What the subcommands that open images share: the --format option and opening through image::open_image.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>

#include "disk/virtual_disk.h"
#include "image/open_image.h"

namespace vhdkit::cli {

// Adds `name` (e.g. "-f,--format") taking raw|vhd|vhdx to force a format instead of detecting it; `target`
// stays empty when the option is not given.
CLI::Option* add_format_option(CLI::App& app, std::string& target, const std::string& name = "-f,--format",
                               const std::string& what = "the image");

struct ImageRequest {
  std::string path;
  std::string format;  // from add_format_option; empty: detect
  io::Access access = io::Access::ReadOnly;
  disk::ParentPolicy parents = disk::ParentPolicy::Require;
};

// Adds the IMAGE positional and -f/--format, filling `request`.
void add_image_arguments(CLI::App& app, ImageRequest& request,
                         const std::string& what = "the disk image (VHD, VHDX or raw)");

Result<std::unique_ptr<disk::VirtualDisk>> open_image(const ImageRequest& request);

}  // namespace vhdkit::cli
