#include "disk/create_image.h"

#include <fmt/format.h>

#include "vhd/vhd_create.h"
#include "vhdx/create.h"

namespace vhdkit::disk {

Result<std::unique_ptr<VirtualDisk>> create_image(io::Env& env, const std::string& path,
                                                  const CreateOptions& options) {
  if (options.type == DiskType::Differencing && !options.parent_path)
    return fail(ReturnCode::InvalidParameter, path, "a differencing disk needs a parent");
  switch (options.format) {
    case Format::Vhd: {
      vhd::CreateParams p{options.type, options.virtual_size, options.block_size, options.parent_path.value_or("")};
      VHDKIT_ASSIGN(auto image, vhd::create(env, path, p));
      return std::unique_ptr<VirtualDisk>(std::move(image));
    }
    case Format::Vhdx: return vhdx::create_image(env, path, options);
    case Format::Raw:
      break;
  }
  return fail(ReturnCode::NotSupported, path,
              fmt::format("creating {} images is not supported yet", to_string(options.format)));
}

}  // namespace vhdkit::disk
