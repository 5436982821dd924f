#include <fmt/format.h>

#include <array>
#include <cstring>

#include "disk/raw_disk.h"
#include "disk/virtual_disk.h"
#include "vhd/vhd_image.h"
#include "vhdx/vhdx_disk.h"

namespace vhdkit::disk {

std::string_view to_string(Format f) {
  switch (f) {
    case Format::Raw: return "raw";
    case Format::Vhd: return "vhd";
    case Format::Vhdx: return "vhdx";
  }
  return "?";
}

std::string_view to_string(DiskType t) {
  switch (t) {
    case DiskType::Fixed: return "fixed";
    case DiskType::Dynamic: return "dynamic";
    case DiskType::Differencing: return "differencing";
  }
  return "?";
}

Result<Format> detect_format(io::File& file) {
  VHDKIT_ASSIGN(uint64_t size, file.size());
  std::array<std::byte, 8> sig{};
  auto is = [&](const char* text) { return std::memcmp(sig.data(), text, 8) == 0; };
  if (size >= 8) {
    VHDKIT_TRY(file.read_at(0, sig));
    if (is("vhdxfile")) return Format::Vhdx;
    if (is("conectix")) return Format::Vhd;  // the footer copy of a dynamic or differencing VHD
  }
  // A fixed VHD has only the footer, in the last 512 bytes (511 for images from before Virtual PC 2004).
  for (uint64_t tail : {512u, 511u}) {
    if (size >= tail) {
      VHDKIT_TRY(file.read_at(size - tail, sig));
      if (is("conectix")) return Format::Vhd;
    }
  }
  return Format::Raw;
}

Result<std::unique_ptr<VirtualDisk>> open_image(io::Env& env, const std::string& path,
                                                const OpenOptions& options) {
  VHDKIT_ASSIGN(auto file, env.open(path, options.access));
  Format format;
  if (options.format) {
    format = *options.format;
  } else {
    VHDKIT_ASSIGN(format, detect_format(*file));
  }
  switch (format) {
    case Format::Raw: return open_raw(std::move(file), options.access);
    case Format::Vhd: return vhd::open_vhd(env, std::move(file), options);
    case Format::Vhdx: return vhdx::open_disk(env, std::move(file), options);
  }
  return fail(ReturnCode::NotSupported, path,
              fmt::format("{} images are not supported yet", to_string(format)));
}

}  // namespace vhdkit::disk
