// SPDX-License-Identifier: Apache-2.0
// Writes the starting points of the fuzz targets with vhdkit's own writers (no other tool makes VHDs with
// small blocks): seeds IMAGE_CORPUS VHDX_BASES VHDX_CORPUS.
//   IMAGE_CORPUS: small dynamic and fixed VHDs (4 KiB and 8 KiB blocks, zero and data blocks, blocks written
//     out of order) for fuzz_image.
//   VHDX_BASES: small VHDX files (1 MiB blocks, 512 and 4096-byte sectors, one with a log to replay) that
//     fuzz_vhdx patches; VHDX_CORPUS: one input per base.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "image/open_image.h"
#include "io/testing/mem_env.h"
#include "vhdx/create.h"
#include "vhdx/image.h"

namespace {

using namespace vhdkit;

void save(io::MemEnv& env, const std::string& mem_path, const std::string& out) {
  auto bytes = env.bytes(mem_path);
  std::ofstream(out, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes->data()), static_cast<std::streamsize>(bytes->size()));
}

bool fill(disk::VirtualDisk& d, uint64_t block, const std::string& pattern) {
  for (size_t i = 0; i < pattern.size(); ++i) {
    std::vector<std::byte> b(block, pattern[i] == 'D' ? std::byte{0x5a} : std::byte{0});
    if (pattern[i] == 'P') b[block / 2] = std::byte{1};
    if (pattern[i] != '.' && !d.write(i * block, b)) return false;
  }
  return bool(d.flush());
}

bool make(io::MemEnv& env, const std::string& path, disk::Format format, disk::DiskType type, uint64_t size,
          uint32_t block, const std::string& pattern) {
  disk::CreateOptions o;
  o.format = format;
  o.type = type;
  o.virtual_size = size;
  o.block_size = block;
  auto d = image::create_image(env, path, o);
  return d && fill(**d, block ? block : 512, pattern);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: seeds IMAGE_CORPUS VHDX_BASES VHDX_CORPUS\n");
    return 2;
  }
  const std::string images = argv[1], bases = argv[2], vhdx_corpus = argv[3];
  io::MemEnv env;
  int n = 0;
  auto vhd = [&](disk::DiskType type, uint64_t size, uint32_t block, const std::string& pattern) {
    std::string p = "/seed/" + std::to_string(n);
    if (!make(env, p, disk::Format::Vhd, type, size, block, pattern)) return false;
    save(env, p, images + "/vhd-" + std::to_string(n++));
    return true;
  };
  // Blocks of 4 KiB at least: vhdkit does not make VHDs with smaller ones (qemu misreads them).
  bool ok = vhd(disk::DiskType::Dynamic, 13 * 4096, 4096, "DZDZZDPZDZ.DZ") &&
            vhd(disk::DiskType::Dynamic, 64 << 10, 4096, "ZZDDZD") &&
            vhd(disk::DiskType::Dynamic, 64 << 10, 8192, "DPZ.ZD") && vhd(disk::DiskType::Fixed, 16 << 10, 0, "");

  auto vhdx = [&](const std::string& name, uint32_t sector, const std::string& pattern) {
    std::string p = "/seed/" + name + ".vhdx";
    vhdx::CreateOptions o;
    o.virtual_size = pattern.size() << 20;
    o.block_size = 1 << 20;
    o.logical_sector_size = sector;
    if (!vhdx::create(env, p, o)) return std::string();
    disk::OpenOptions rw;
    rw.access = io::Access::ReadWrite;
    auto d = image::open_image(env, p, rw);
    if (!d || !fill(**d, 1 << 20, pattern)) return std::string();
    return p;
  };
  std::string plain = vhdx("plain", 512, "DZ.PZD"), sectors = vhdx("sectors4k", 4096, "ZD.Z");
  std::string dirty = vhdx("dirty-log", 512, "DZDZ");
  ok = ok && !plain.empty() && !sectors.empty() && !dirty.empty();
  if (ok) {
    // A log left open with one entry in it (as a crash leaves one): block 1 released through the log.
    auto f = env.open(dirty, io::Access::ReadWrite);
    ok = f.has_value();
    if (ok) {
      auto image = vhdx::Image::open(std::move(*f), io::Access::ReadWrite);
      ok = image.has_value();
      vhdx::LogTransaction tx;
      if (ok) (*image)->add_bat_changes(tx, std::vector<std::pair<uint64_t, uint64_t>>{{1, 0}});
      ok = ok && (*image)->commit(tx);
    }
  }
  int b = 0;
  for (const std::string& p : {plain, sectors, dirty}) {
    if (!ok) break;
    save(env, p, bases + "/" + std::to_string(b) + "-" + p.substr(6));
    const char input[] = {static_cast<char>(b), static_cast<char>(b & 1)};
    std::ofstream(vhdx_corpus + "/base-" + std::to_string(b), std::ios::binary).write(input, 2);
    ++b;
  }
  if (!ok) std::fprintf(stderr, "seeds: could not make the seed images\n");
  return ok ? 0 : 1;
}
