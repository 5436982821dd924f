#include "disk/raw_disk.h"

#include <fmt/format.h>

namespace vhdkit::disk {
namespace {

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
    if (access_ != io::Access::ReadWrite)
      return fail(ReturnCode::InvalidState, path(), "image is open read-only");
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

}  // namespace

Result<std::unique_ptr<VirtualDisk>> open_raw(std::unique_ptr<io::File> file, io::Access access) {
  VHDKIT_ASSIGN(uint64_t size, file->size());
  return std::make_unique<RawDisk>(std::move(file), access, size);
}

}  // namespace vhdkit::disk
