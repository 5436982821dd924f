// SPDX-License-Identifier: Apache-2.0
#include "vhd/vhd_driver.h"

#include <cstring>

#include "vhd/vhd_create.h"
#include "vhd/vhd_format.h"
#include "vhd/vhd_image.h"

namespace vhdkit::vhd {
namespace {

bool cookie_at(std::span<const std::byte> bytes, size_t offset) {
  return bytes.size() >= offset + 8 && std::memcmp(bytes.data() + offset, "conectix", 8) == 0;
}

class VhdDriver final : public disk::Driver {
 public:
  disk::Format format() const override { return disk::Format::Vhd; }

  // The footer copy at offset 0 (dynamic and differencing disks), or the footer in the last 512 bytes
  // (511 for images from before Virtual PC 2004).
  int probe(const disk::ProbeBytes& b) const override {
    if (cookie_at(b.head, 0)) return 100;
    for (size_t tail : {kFooterSize, kFooterSize - 1})
      if (b.tail.size() >= tail && cookie_at(b.tail, b.tail.size() - tail)) return 100;
    return 0;
  }

  Result<std::unique_ptr<disk::VirtualDisk>> open(io::Env& env, std::unique_ptr<io::File> file,
                                                  const disk::OpenOptions& options) const override {
    return open_vhd(env, std::move(file), options);
  }

  Result<std::unique_ptr<disk::VirtualDisk>> create(io::Env& env, const std::string& path,
                                                    const disk::CreateOptions& o) const override {
    CreateParams p{o.type, o.virtual_size, o.block_size, o.parent_path.value_or("")};
    VHDKIT_ASSIGN(auto image, vhd::create(env, path, p));
    return std::unique_ptr<disk::VirtualDisk>(std::move(image));
  }
};

}  // namespace

const disk::Driver& driver() {
  static const VhdDriver d;
  return d;
}

}  // namespace vhdkit::vhd
