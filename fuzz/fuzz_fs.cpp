// libFuzzer target: the input is a raw disk (partition tables, ext2/3/4, swap), mapped by fs::map_usage.
// Beyond not crashing, the map must keep its promises: used ranges sorted, merged and inside the disk;
// volumes inside the disk, their used and free bytes adding up; the same answer twice.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "disk/virtual_disk.h"
#include "fs/usage_map.h"
#include "io/mem_env.h"

namespace {

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_fs: broken promise: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vhdkit;
  io::MemEnv env;
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  env.set_bytes("/fuzz/disk.img", std::vector<std::byte>(bytes, bytes + size));
  disk::OpenOptions options;
  options.format = disk::Format::Raw;
  auto d = disk::open_image(env, "/fuzz/disk.img", options);
  if (!d) return 0;
  auto m = fs::map_usage(**d);
  if (!m) return 0;
  const uint64_t disk_size = (*d)->virtual_size();
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
  auto again = fs::map_usage(**d);
  require(again && again->used == m->used, "a second map differs");
  return 0;
}
