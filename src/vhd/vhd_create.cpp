// SPDX-License-Identifier: Apache-2.0
#include "vhd/vhd_create.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "vhd/parent_locator.h"

namespace vhdkit::vhd {

namespace fs = std::filesystem;

// Who wrote the file, honestly: "vkit" 0.1 (vhdkit). "Wi2k" is the only host value the spec defines
// for Windows-style paths, and every reader accepts it.
constexpr std::array<char, 4> kCreatorApp{'v', 'k', 'i', 't'};
constexpr uint32_t kCreatorVersion = 0x00000001;
constexpr std::array<char, 4> kCreatorHostOs{'W', 'i', '2', 'k'};

static uint32_t vhd_now() {
  auto unix_now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return static_cast<uint32_t>(static_cast<uint64_t>(unix_now) - kVhdEpoch);
}

Footer new_footer(DiskTypeCode type, uint64_t virtual_size, uint64_t data_offset) {
  Footer f;
  f.cookie = {'c', 'o', 'n', 'e', 'c', 't', 'i', 'x'};
  f.features = kFeaturesReserved;
  f.format_version = kFormatVersion;
  f.data_offset = data_offset;
  f.timestamp = vhd_now();
  f.creator_app = kCreatorApp;
  f.creator_version = kCreatorVersion;
  f.creator_host_os = kCreatorHostOs;
  f.original_size = virtual_size;
  f.current_size = virtual_size;
  // The size is exact (Current Size), never rounded: a disk must hold what the caller asked for, and
  // Hyper-V, Windows and libvhdi read Current Size. The CHS geometry is the spec's when it describes
  // exactly that many sectors; otherwise it is the maximum 65535/16/255, which is what qemu's own
  // force_size writes and the one geometry qemu (which trusts CHS for creators it does not know, such as
  // ours) reads as "use Current Size". So qemu-img, Hyper-V and vhdiinfo all see the same size.
  Geometry g = geometry_for(virtual_size / kSectorSize);
  f.geometry = g.sectors() * kSectorSize == virtual_size ? g : kMaxGeometry;
  f.disk_type = static_cast<uint32_t>(type);
  f.unique_id = Guid::random();
  return f;
}

namespace {

Bytes sealed_footer(const Footer& f) {
  Bytes raw(kFooterSize);
  std::span<std::byte, kFooterSize> s(raw.data(), kFooterSize);
  encode_footer(f, s);
  seal(raw, kFooterChecksumOffset);
  return raw;
}

struct Plan {
  Footer footer;
  std::optional<DynamicHeader> header;
  std::vector<std::pair<uint64_t, Bytes>> writes;  // everything but the footer at the end
  uint64_t footer_offset = 0;
};

Status check_params(const std::string& path, uint64_t size, uint32_t block_size) {
  if (size == 0 || size % kSectorSize != 0)
    return fail(ReturnCode::InvalidParameter, path,
                fmt::format("the virtual size {} is not a positive multiple of 512 bytes", size));
  if (size > kMaxVirtualSize)
    return fail(ReturnCode::InvalidParameter, path,
                fmt::format("the virtual size {} is larger than the 2040 GiB a VHD can hold", size));
  if (!is_power_of_two(block_size) || block_size < kMinInteropBlockSize || block_size > kMaxBlockSize)
    return fail(ReturnCode::InvalidParameter, path,
                fmt::format("the block size {} is not a power of two between 4 KiB and 256 MiB (qemu reads the "
                            "sector bitmap of smaller blocks wrongly)",
                            block_size));
  if (div_round_up(size, block_size) > kMaxReadTableEntries)
    return fail(ReturnCode::InvalidParameter, path,
                fmt::format("{}-byte blocks give a {}-byte disk {} block table entries; at most {} are supported: "
                            "use larger blocks",
                            block_size, size, div_round_up(size, block_size), kMaxReadTableEntries));
  return ok();
}

// Dynamic layout (what qemu and Windows write): footer copy, header, BAT, parent locator data, then
// blocks, then the footer.
Plan plan_dynamic(DiskTypeCode type, uint64_t size, uint32_t block_size) {
  Plan p;
  p.footer = new_footer(type, size, kFooterSize);
  DynamicHeader h;
  h.cookie = {'c', 'x', 's', 'p', 'a', 'r', 's', 'e'};
  h.data_offset = kNoOffset;
  h.table_offset = kFooterSize + kDynamicHeaderSize;
  h.header_version = kFormatVersion;
  h.max_table_entries = static_cast<uint32_t>(div_round_up(size, block_size));
  h.block_size = block_size;
  uint64_t bat_bytes = round_up(uint64_t{h.max_table_entries} * 4, kSectorSize);
  p.writes.emplace_back(h.table_offset, Bytes(bat_bytes, std::byte{0xFF}));
  p.footer_offset = h.table_offset + bat_bytes;
  p.header = std::move(h);
  return p;
}

void add_locator(Plan& p, size_t index, uint32_t code, const std::string& text) {
  Bytes data = utf16le_encode(utf8_to_utf16(text));
  uint64_t space = round_up(std::max<uint64_t>(data.size(), 1), kSectorSize);
  ParentLocator& l = p.header->locators[index];
  l.platform_code = code;
  // Bytes, as Windows writes it (the spec says sectors; readers accept both, see vhd_metadata.cpp).
  l.platform_data_space = static_cast<uint32_t>(space);
  l.platform_data_length = static_cast<uint32_t>(data.size());
  l.platform_data_offset = p.footer_offset;
  data.resize(space);
  p.writes.emplace_back(p.footer_offset, std::move(data));
  p.footer_offset += space;
}

Status write_plan(io::File& file, Plan& p) {
  Bytes footer = sealed_footer(p.footer);
  if (p.header) {
    Bytes raw(kDynamicHeaderSize);
    std::span<std::byte, kDynamicHeaderSize> s(raw.data(), kDynamicHeaderSize);
    encode_dynamic_header(*p.header, s);
    seal(raw, kHeaderChecksumOffset);
    VHDKIT_TRY(file.write_at(0, footer));
    VHDKIT_TRY(file.write_at(kFooterSize, raw));
  }
  for (const auto& [offset, bytes] : p.writes) VHDKIT_TRY(file.write_at(offset, bytes));
  VHDKIT_TRY(file.write_at(p.footer_offset, footer));
  return file.flush();
}

}  // namespace

Result<std::unique_ptr<Image>> create(io::Env& env, const std::string& path, const CreateParams& params) {
  Plan plan;
  uint32_t block_size = params.block_size ? params.block_size : kDefaultBlockSize;
  std::string parent_abs;
  switch (params.type) {
    case disk::DiskType::Fixed:
      VHDKIT_TRY(check_params(path, params.virtual_size, block_size));
      plan.footer = new_footer(DiskTypeCode::Fixed, params.virtual_size, kNoOffset);
      plan.footer_offset = params.virtual_size;
      break;
    case disk::DiskType::Dynamic:
      VHDKIT_TRY(check_params(path, params.virtual_size, block_size));
      plan = plan_dynamic(DiskTypeCode::Dynamic, params.virtual_size, block_size);
      break;
    case disk::DiskType::Differencing: {
      if (params.parent_path.empty())
        return fail(ReturnCode::InvalidParameter, path, "a differencing disk needs a parent");
      VHDKIT_ASSIGN(parent_abs, env.absolute(params.parent_path));
      VHDKIT_ASSIGN(auto parent_file, env.open(parent_abs, io::Access::ReadOnly));
      VHDKIT_ASSIGN(auto parent, Image::open(env, std::move(parent_file), disk::OpenOptions{}));
      if (!params.block_size && parent->block_size()) block_size = parent->block_size();
      VHDKIT_TRY(check_params(path, parent->virtual_size(), block_size));
      plan = plan_dynamic(DiskTypeCode::Differencing, parent->virtual_size(), block_size);
      DynamicHeader& h = *plan.header;
      h.parent_unique_id = parent->footer().unique_id;
      h.parent_timestamp = parent->footer().timestamp;
      std::u16string name = utf8_to_utf16(parent_abs);
      if (name.size() > kParentNameBytes / 2) name = utf8_to_utf16(fs::path(parent_abs).filename().string());
      h.parent_unicode_name = name.substr(0, kParentNameBytes / 2);
      VHDKIT_ASSIGN(std::string child_abs, env.absolute(path));
      add_locator(plan, 0, kPlatformW2ku, parent_abs);
      add_locator(plan, 1, kPlatformW2ru, windows_relative_path(child_abs, parent_abs));
      break;
    }
  }
  VHDKIT_ASSIGN(auto file, env.open(path, io::Access::ReadWrite, io::Creation::CreateNew));
  Status written = write_plan(*file, plan);
  if (written) {
    std::string dir = fs::path(path).parent_path().string();
    written = env.sync_dir(dir.empty() ? "." : dir);
  }
  if (!written) {
    file.reset();
    (void)env.remove(path);
    return fail(written.error());
  }
  disk::OpenOptions options;
  options.access = io::Access::ReadWrite;
  return Image::open(env, std::move(file), options);
}

}  // namespace vhdkit::vhd
