#include "compact/open_compactable.h"

#include "vhd/vhd_compaction.h"
#include "vhdx/vhdx_compaction.h"

namespace vhdkit::compact {

Result<std::unique_ptr<CompactableImage>> open_compactable(io::Env& env, const std::string& path,
                                                           io::Access access) {
  disk::Format format;
  {
    VHDKIT_ASSIGN(auto probe, env.open(path, io::Access::ReadOnly));
    VHDKIT_ASSIGN(format, disk::detect_format(*probe));
  }
  switch (format) {
    case disk::Format::Vhd:
      return vhd::open_for_compaction(env, path, access);
    case disk::Format::Vhdx:
      return vhdx::open_for_compaction(env, path, access);
    case disk::Format::Raw:
      break;
  }
  return fail(ReturnCode::NotSupported, path,
              "not a VHD or VHDX image: a raw image has no block table, so there are no blocks to release");
}

}  // namespace vhdkit::compact
