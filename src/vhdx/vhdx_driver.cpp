// SPDX-License-Identifier: Apache-2.0
#include "vhdx/vhdx_driver.h"

#include <cstring>

#include "vhdx/create.h"
#include "vhdx/vhdx_disk.h"

namespace vhdkit::vhdx {
namespace {

class VhdxDriver final : public disk::Driver {
 public:
  disk::Format format() const override { return disk::Format::Vhdx; }

  // [MS-VHDX] 2.2.1: the file type identifier "vhdxfile" opens the file.
  int probe(const disk::ProbeBytes& b) const override {
    return b.head.size() >= 8 && std::memcmp(b.head.data(), "vhdxfile", 8) == 0 ? 100 : 0;
  }

  Result<std::unique_ptr<disk::VirtualDisk>> open(io::Env& env, std::unique_ptr<io::File> file,
                                                  const disk::OpenOptions& options) const override {
    return open_disk(env, std::move(file), options);
  }

  Result<std::unique_ptr<disk::VirtualDisk>> create(io::Env& env, const std::string& path,
                                                    const disk::CreateOptions& options) const override {
    return create_image(env, path, options);
  }
};

}  // namespace

const disk::Driver& driver() {
  static const VhdxDriver d;
  return d;
}

}  // namespace vhdkit::vhdx
