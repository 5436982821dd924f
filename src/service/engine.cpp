#include "service/engine.h"

#include "disk/virtual_disk.h"

namespace vhdkit::service {
namespace {

class CompactionEngine final : public Engine {
 public:
  Status probe(io::Env& env, const std::string& path) override {
    {
      VHDKIT_ASSIGN(auto file, env.open(path, io::Access::ReadOnly));
      VHDKIT_ASSIGN(disk::Format format, disk::detect_format(*file));
      if (format == disk::Format::Raw) {
        return fail(ReturnCode::NotSupported, path,
                    "not a VHD or VHDX image (no 'vhdxfile' signature, no 'conectix' footer): only dynamic and "
                    "differencing virtual hard disks can be compacted");
      }
    }
    disk::OpenOptions options;
    options.parents = disk::ParentPolicy::Optional;
    auto image = disk::open_image(env, path, options);
    if (!image) return fail(image.error());
    return ok();
  }

  Result<compact::Report> compact(io::Env& env, const std::string& path, const compact::Options& options,
                                  compact::Observer* observer) override {
    return compact::compact_image(env, path, options, observer);
  }
};

}  // namespace

std::unique_ptr<Engine> make_engine() { return std::make_unique<CompactionEngine>(); }

}  // namespace vhdkit::service
