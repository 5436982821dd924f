// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the input is a whole image file (VHD of small blocks, or anything else: raw, VHDX
// fragments), opened, read and compacted in memory (exercise.h).
//
// Checksums kept valid: when the input's length is even and it holds VHD footers, the checksums of the footer
// copy at offset 0, of the footer at the end and of the dynamic header the footer names are made right, so
// that damaged fields reach the table, block and locator checks behind them (odd lengths keep the checksums
// as the mutation left them, to exercise their checks too).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/bytes.h"
#include "exercise.h"

namespace {

// The VHD checksum: the ones' complement of the byte sum, with the field itself counted as zero.
void fix_vhd_checksum(std::vector<std::byte>& f, size_t at, size_t length, size_t field) {
  if (at > f.size() || length > f.size() - at) return;
  uint32_t sum = 0;
  for (size_t i = 0; i < length; ++i)
    if (i < field || i >= field + 4) sum += static_cast<uint8_t>(f[at + i]);
  vhdkit::store_be<uint32_t>(f.data() + at + field, ~sum);
}

void fix_vhd_checksums(std::vector<std::byte>& f) {
  if (f.size() < 512) return;
  for (size_t footer : {size_t{0}, f.size() - 512}) {
    if (std::memcmp(f.data() + footer, "conectix", 8) != 0) continue;
    fix_vhd_checksum(f, footer, 512, 64);
    uint64_t header = vhdkit::load_be<uint64_t>(f.data() + footer + 16);
    if (header <= f.size() && f.size() - header >= 1024 && std::memcmp(f.data() + header, "cxsparse", 8) == 0)
      fix_vhd_checksum(f, static_cast<size_t>(header), 1024, 36);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vhdkit::io::MemEnv env;
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  std::vector<std::byte> f(bytes, bytes + size);
  if (size % 2 == 0) fix_vhd_checksums(f);
  env.set_bytes("/fuzz/disk.img", std::move(f));
  vhdkit::fuzz::exercise(env, "/fuzz/disk.img");
  return 0;
}
