// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for VHDX, whose smallest valid file is megabytes long and whose structures carry
// CRC-32C checksums: the input patches one of a few base images (fuzz/seeds.cpp writes them) and may
// have the checksums of the headers and region tables made right again, so that the damage reaches the
// log, the metadata and the BAT behind them.
//
// Input: byte 0 picks the base; byte 1 bit 0: fix the checksums of headers and region tables, bit 1 (with bit 0):
// those of the log entries too (fix_log_checksums); then records of
// (offset: 4 bytes little-endian, modulo the file size; length: 1 byte, 1-64; that many bytes).
#include <boost/crc.hpp>

#include <algorithm>
#include <cstring>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/bytes.h"
#include "exercise.h"

namespace {

std::vector<std::vector<std::byte>> bases;

uint32_t crc32c(std::span<const std::byte> b) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(b.data(), b.size());
  return crc.checksum();
}

// The checksum field (at +4) of a header (4 KiB) or region table (64 KiB), over the block with it zeroed.
void fix_checksum(std::vector<std::byte>& f, size_t offset, size_t length) {
  if (offset + length > f.size()) return;
  std::span<std::byte> block(f.data() + offset, length);
  vhdkit::store_le<uint32_t>(block.data() + 4, 0);
  vhdkit::store_le<uint32_t>(block.data() + 4, crc32c(block));
}

// The log entries of the current header's log: every sector that starts with "loge" and whose EntryLength is
// a 4 KiB multiple within the log gets its CRC-32C made right (over the entry, wrapping at the log's end), so
// that damage to descriptors, offsets and lengths reaches the replay plan.
void fix_log_checksums(std::vector<std::byte>& f) {
  auto header_at = [&](size_t at) -> std::pair<uint64_t, uint64_t> {  // (sequence, index)
    if (at + 4096 > f.size() || std::memcmp(f.data() + at, "head", 4) != 0) return {0, 0};
    return {vhdkit::load_le<uint64_t>(f.data() + at + 8), at};
  };
  auto h1 = header_at(64u << 10), h2 = header_at(128u << 10);
  size_t h = (h2.first > h1.first ? h2 : h1).second;
  if (!h) return;
  uint64_t log_length = vhdkit::load_le<uint32_t>(f.data() + h + 68);
  uint64_t log_offset = vhdkit::load_le<uint64_t>(f.data() + h + 72);
  if (log_length == 0 || log_length % 4096 != 0 || log_offset > f.size() || log_length > f.size() - log_offset) return;
  std::byte* log = f.data() + log_offset;
  for (uint64_t at = 0; at < log_length; at += 4096) {
    if (std::memcmp(log + at, "loge", 4) != 0) continue;
    uint32_t length = vhdkit::load_le<uint32_t>(log + at + 8);
    if (length == 0 || length % 4096 != 0 || length > log_length) continue;
    std::vector<std::byte> entry(length);
    for (uint64_t i = 0; i < length; i += 4096) std::memcpy(entry.data() + i, log + (at + i) % log_length, 4096);
    vhdkit::store_le<uint32_t>(entry.data() + 4, 0);
    vhdkit::store_le<uint32_t>(log + at + 4, crc32c(entry));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("VHDKIT_FUZZ_BASES");
  if (!dir) return 0;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".vhdx") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& p : files) {
    std::vector<std::byte> bytes(std::filesystem::file_size(p));
    std::ifstream(p, std::ios::binary)
        .read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    bases.push_back(std::move(bytes));
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (bases.empty() || size < 2) return 0;
  std::vector<std::byte> f = bases[data[0] % bases.size()];
  const bool fix = data[1] & 1;
  for (size_t at = 2; at + 5 <= size;) {
    uint32_t offset = static_cast<uint32_t>(data[at]) | static_cast<uint32_t>(data[at + 1]) << 8 |
                      static_cast<uint32_t>(data[at + 2]) << 16 | static_cast<uint32_t>(data[at + 3]) << 24;
    size_t length = data[at + 4] % 64 + 1;
    at += 5;
    for (size_t i = 0; i < length && at < size; ++i, ++at) f[(offset + i) % f.size()] = std::byte{data[at]};
  }
  if (fix) {
    for (size_t header : {64u << 10, 128u << 10}) fix_checksum(f, header, 4 << 10);
    for (size_t table : {192u << 10, 256u << 10}) fix_checksum(f, table, 64 << 10);
    if (data[1] & 2) {
      fix_log_checksums(f);
      for (size_t header : {64u << 10, 128u << 10}) fix_checksum(f, header, 4 << 10);
    }
  }
  vhdkit::io::MemEnv env;
  env.set_bytes("/fuzz/disk.vhdx", std::move(f));
  vhdkit::fuzz::exercise(env, "/fuzz/disk.vhdx");
  return 0;
}
