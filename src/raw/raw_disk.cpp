// SPDX-License-Identifier: Apache-2.0
#include "raw/raw_disk.h"

#include <fmt/format.h>

namespace vhdkit::raw {
namespace {

using disk::DiskInfo;
using disk::DiskType;
using disk::Format;
using disk::MapExtent;
using disk::VirtualDisk;

class RawDisk final : public VirtualDisk {
 public:
  RawDisk(std::unique_ptr<io::File> file, io::Access access, uint64_t size)
      : file_(std::move(file)), access_(access), size_(size) {}

  const std::string& path() const override { return file_->path(); }
  uint64_t virtual_size() const override { return size_; }

  DiskInfo info() const override {
    DiskInfo i;
    i.format = Format::Raw;
    i.type = DiskType::Fixed;
    i.virtual_size = size_;
    i.file_size = size_;
    return i;
  }

  Status read(uint64_t offset, std::span<std::byte> buf) override {
    VHDKIT_TRY(check_range(offset, buf.size()));
    return file_->read_at(offset, buf);
  }

  Status write(uint64_t offset, std::span<const std::byte> buf) override {
    if (access_ != io::Access::ReadWrite) return fail(ReturnCode::InvalidState, path(), "image is open read-only");
    VHDKIT_TRY(check_range(offset, buf.size()));
    return file_->write_at(offset, buf);
  }

  Status flush() override { return file_->flush(); }

  Result<std::vector<MapExtent>> map() override {
    std::vector<MapExtent> m;
    if (size_ > 0) m.push_back({0, size_, 0, true, false, true, 0});
    return m;
  }

  std::vector<std::string> check() override { return {}; }
  VirtualDisk* parent() override { return nullptr; }
  io::File& file() override { return *file_; }

 private:
  Status check_range(uint64_t offset, uint64_t len) const {
    if (offset > size_ || len > size_ - offset)
      return fail(ReturnCode::InvalidParameter, path(),
                  fmt::format("range {}+{} lies past the end of the {}-byte disk", offset, len, size_));
    return ok();
  }

  std::unique_ptr<io::File> file_;
  io::Access access_;
  uint64_t size_;
};

class RawDriver final : public disk::Driver {
 public:
  Format format() const override { return Format::Raw; }
  // Any file is a raw image: the lowest score, so that every signature wins over it.
  int probe(const disk::ProbeBytes&) const override { return 1; }
  Result<std::unique_ptr<VirtualDisk>> open(io::Env&, std::unique_ptr<io::File> file,
                                            const disk::OpenOptions& options) const override {
    return open_raw(std::move(file), options.access);
  }
  Result<std::unique_ptr<VirtualDisk>> create(io::Env&, const std::string& path,
                                              const disk::CreateOptions&) const override {
    return fail(ReturnCode::NotSupported, path, "vhdkit does not create raw images: `truncate -s SIZE FILE` makes one");
  }
};

}  // namespace

Result<std::unique_ptr<VirtualDisk>> open_raw(std::unique_ptr<io::File> file, io::Access access) {
  VHDKIT_ASSIGN(uint64_t size, file->size());
  return std::make_unique<RawDisk>(std::move(file), access, size);
}

const disk::Driver& driver() {
  static const RawDriver d;
  return d;
}

}  // namespace vhdkit::raw
