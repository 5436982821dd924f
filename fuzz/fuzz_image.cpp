// libFuzzer target: the input is a whole image file (VHD of small blocks, or anything else: raw, VHDX
// fragments), opened, read and compacted in memory (exercise.h).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "exercise.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vhdkit::io::MemEnv env;
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  env.set_bytes("/fuzz/disk.img", std::vector<std::byte>(bytes, bytes + size));
  vhdkit::fuzz::exercise(env, "/fuzz/disk.img");
  return 0;
}
