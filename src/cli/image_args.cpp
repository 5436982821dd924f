// SPDX-License-Identifier: Apache-2.0
#include "cli/image_args.h"
#include "image/open_image.h"

namespace vhdkit::cli {

CLI::Option* add_format_option(CLI::App& app, std::string& target, const std::string& name, const std::string& what) {
  return app.add_option(name, target, "force the format of " + what + " instead of detecting it")
      ->check(CLI::IsMember({"raw", "vhd", "vhdx"}))
      ->type_name("FORMAT");
}

void add_image_arguments(CLI::App& app, ImageRequest& request, const std::string& what) {
  app.add_option("IMAGE", request.path, what)->required();
  add_format_option(app, request.format);
}

Result<std::unique_ptr<disk::VirtualDisk>> open_image(const ImageRequest& request) {
  disk::OpenOptions options;
  options.access = request.access;
  options.format = disk::format_from_string(request.format);
  options.parents = request.parents;
  return image::open_image(io::Env::posix(), request.path, options);
}

}  // namespace vhdkit::cli
