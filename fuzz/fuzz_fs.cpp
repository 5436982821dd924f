// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the input is a whole disk (partition tables, ext2/3/4, swap), mapped by fs::map_usage.
// Beyond not crashing, the map must keep its promises: used ranges sorted, merged and inside the disk;
// volumes inside the disk, their used and free bytes adding up; the same answer twice.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "disk/virtual_disk.h"
#include "fs/usage_map.h"
#include "io/testing/mem_env.h"

namespace {

using namespace vhdkit;

// The input as a disk of its own, read straight from memory (no format driver in the way). An input of
// odd length says its logical sectors are 4096 bytes (as a 4Kn VHDX does), so both GPT block sizes and
// both MBR sector sizes get fuzzed.
class BytesDisk final : public disk::VirtualDisk {
 public:
  BytesDisk(std::vector<std::byte> bytes, std::unique_ptr<io::File> file)
      : bytes_(std::move(bytes)), file_(std::move(file)) {}
  const std::string& path() const override { return path_; }
  disk::DiskInfo info() const override {
    disk::DiskInfo i;
    i.virtual_size = bytes_.size();
    i.logical_sector_size = bytes_.size() % 2 ? 4096 : 512;
    return i;
  }
  uint64_t virtual_size() const override { return bytes_.size(); }
  Status read(uint64_t offset, std::span<std::byte> buf) override {
    if (offset > bytes_.size() || buf.size() > bytes_.size() - offset) {
      return fail(ReturnCode::InvalidParameter, path_, "read past the end");
    }
    if (!buf.empty()) std::memcpy(buf.data(), bytes_.data() + offset, buf.size());
    return ok();
  }
  Status write(uint64_t, std::span<const std::byte>) override {
    std::fprintf(stderr, "fuzz_fs: broken promise: map_usage wrote to the disk\n");
    std::abort();
  }
  Status flush() override { return ok(); }
  Result<std::vector<disk::MapExtent>> map() override {
    return std::vector<disk::MapExtent>{{0, bytes_.size(), 0, true, false, true, std::nullopt}};
  }
  std::vector<std::string> check() override { return {}; }
  disk::VirtualDisk* parent() override { return nullptr; }
  io::File& file() override { return *file_; }

 private:
  std::string path_ = "/fuzz/disk.img";
  std::vector<std::byte> bytes_;
  std::unique_ptr<io::File> file_;
};

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_fs: broken promise: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  io::MemEnv env;
  env.set_bytes("/fuzz/disk.img", {});
  auto file = env.open("/fuzz/disk.img", io::Access::ReadOnly);
  if (!file) return 0;
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  BytesDisk d(std::vector<std::byte>(bytes, bytes + size), std::move(*file));
  auto m = fs::map_usage(d);
  if (!m) return 0;
  const uint64_t disk_size = d.virtual_size();
  uint64_t prev_end = 0;
  for (size_t i = 0; i < m->used.size(); ++i) {
    const fs::ByteRange& r = m->used[i];
    require(r.length > 0, "empty used range");
    require(r.offset <= disk_size && r.length <= disk_size - r.offset, "used range outside the disk");
    require(i == 0 || r.offset > prev_end, "used ranges not sorted and merged");
    prev_end = r.end();
  }
  for (const fs::Volume& v : m->volumes) {
    require(v.offset <= disk_size && v.size <= disk_size - v.offset, "volume outside the disk");
    require(v.used_bytes + v.free_bytes == v.size, "volume used + free != size");
    require(v.state == fs::Volume::State::Read || v.free_bytes == 0, "a volume kept whole has free bytes");
  }
  auto again = fs::map_usage(d);
  require(again && again->used == m->used, "a second map differs");
  return 0;
}
