#include "vhd/vhd_compaction.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <vector>

#include "core/bytes.h"

namespace vhdkit::vhd {
namespace {

using compact::Extent;
using compact::Move;
using compact::PlanInput;
using compact::Slot;
using compact::Verdict;

constexpr uint64_t kSector = 512;
constexpr uint32_t kUnallocated = 0xFFFFFFFF;

// Hard Disk Footer (VHD spec, "Hard Disk Footer Format"), big-endian, 512 bytes.
namespace footer {
constexpr size_t kCookie = 0;         // "conectix"
constexpr size_t kDataOffset = 16;    // u64: absolute offset of the dynamic disk header
constexpr size_t kCurrentSize = 48;   // u64: virtual size in bytes
constexpr size_t kDiskType = 60;      // u32: 2 fixed, 3 dynamic, 4 differencing
constexpr size_t kChecksum = 64;      // u32: one's complement of the byte sum, this field as zero
constexpr uint32_t kFixed = 2, kDynamic = 3, kDifferencing = 4;
}  // namespace footer

// Dynamic Disk Header (VHD spec, "Dynamic Disk Header Format"), big-endian, 1024 bytes.
namespace header {
constexpr size_t kSize = 1024;
constexpr size_t kCookie = 0;           // "cxsparse"
constexpr size_t kTableOffset = 16;     // u64: absolute offset of the Block Allocation Table
constexpr size_t kMaxTableEntries = 28; // u32
constexpr size_t kBlockSize = 32;       // u32: bytes of data per block (not counting the sector bitmap)
constexpr size_t kChecksum = 36;        // u32
constexpr size_t kParentLocators = 576; // 8 entries of 24 bytes
constexpr size_t kLocatorEntry = 24;
// Parent Locator Entry: Platform Code u32 @0, Platform Data Space u32 @4, Platform Data Length u32 @8,
// Reserved u32 @12, Platform Data Offset u64 @16.
}  // namespace header

uint32_t vhd_checksum(std::span<const std::byte> s, size_t checksum_at) {
  uint32_t sum = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i >= checksum_at && i < checksum_at + 4) continue;
    sum += static_cast<uint8_t>(s[i]);
  }
  return ~sum;
}

class VhdCompaction final : public compact::CompactableImage {
 public:
  static Result<std::unique_ptr<VhdCompaction>> open(io::Env& env, const std::string& path,
                                                     io::Access access) {
    VHDKIT_ASSIGN(auto file, env.open(path, access));
    auto image = std::unique_ptr<VhdCompaction>(new VhdCompaction(std::move(file)));
    VHDKIT_TRY(image->load());
    if (image->type_ == disk::DiskType::Differencing) {
      disk::OpenOptions o;
      o.access = io::Access::ReadOnly;
      o.format = disk::Format::Vhd;
      auto child = disk::open_image(env, path, o);
      if (!child) {
        return fail(child.error().with_context("opening the parent chain of the differencing disk"));
      }
      image->child_view_ = std::move(*child);
      if (!image->child_view_->parent()) {
        return fail(ReturnCode::InvalidState, path, "the differencing disk's parent could not be opened");
      }
    }
    return image;
  }

  const std::string& path() const override { return file_->path(); }
  disk::Format format() const override { return disk::Format::Vhd; }
  disk::DiskType type() const override { return type_; }
  uint64_t block_size() const override { return block_size_; }
  uint64_t block_count() const override { return bat_.size(); }
  io::File& file() override { return *file_; }

  Result<PlanInput> layout() override {
    PlanInput in;
    in.slot_size = bitmap_bytes_ + block_size_;
    in.trailer_size = kSector;
    in.file_size = file_size_;
    in.fixed = fixed_;
    for (uint64_t b = 0; b < bat_.size(); ++b) {
      if (bat_[b] != kUnallocated) in.slots.push_back({b, uint64_t{bat_[b]} * kSector, Verdict::Keep});
    }
    in.alignment = compact::slot_alignment(in.slots);
    return in;
  }

  Result<Verdict> classify(const Slot& slot) override {
    buf_.resize(bitmap_bytes_ + block_size_);
    VHDKIT_TRY(file_->read_at(slot.offset, buf_));
    std::span<const std::byte> bitmap = std::span(buf_).first(bitmap_bytes_);
    std::span<const std::byte> data = std::span(buf_).subspan(bitmap_bytes_);
    if (type_ == disk::DiskType::Dynamic) {
      // Released blocks read as zeros, so only a block whose stored data is all zeros may go (whatever
      // its bitmap says: some readers ignore the bitmap of a dynamic disk).
      return all_zero(data) ? Verdict::Release : Verdict::Keep;
    }
    return classify_differencing(slot.block, bitmap, data);
  }

  Status release(std::span<const Slot> slots) override {
    std::set<uint64_t> dirty;
    for (const Slot& s : slots) {
      bat_[s.block] = kUnallocated;
      dirty.insert(s.block * 4 / kSector);
    }
    VHDKIT_TRY(write_bat_sectors(dirty));
    return file_->flush();
  }

  Status relocate(std::span<const Move> moves) override {
    const uint64_t slot = bitmap_bytes_ + block_size_;
    for (const Move& m : moves) VHDKIT_TRY(file_->copy_range(m.from, m.to, slot));
    VHDKIT_TRY(file_->flush());
    std::set<uint64_t> dirty;
    for (const Move& m : moves) {
      bat_[m.block] = static_cast<uint32_t>(m.to / kSector);
      dirty.insert(m.block * 4 / kSector);
    }
    VHDKIT_TRY(write_bat_sectors(dirty));
    return file_->flush();
  }

  Status shrink(uint64_t new_file_size) override {
    VHDKIT_TRY(file_->write_at(new_file_size - kSector, footer_));
    VHDKIT_TRY(file_->flush());
    VHDKIT_TRY(file_->truncate(new_file_size));
    VHDKIT_TRY(file_->flush());
    file_size_ = new_file_size;
    return ok();
  }

 private:
  explicit VhdCompaction(std::unique_ptr<io::File> file) : file_(std::move(file)) {}

  Error bad(std::string message) const { return Error(ReturnCode::Failed, path(), std::move(message)); }

  Status load() {
    VHDKIT_ASSIGN(file_size_, file_->size());
    if (file_size_ < kSector || file_size_ % kSector != 0) {
      return fail(bad(fmt::format("the file size {} is not a whole number of 512-byte sectors with a footer "
                                  "at the end", file_size_)));
    }
    footer_.resize(kSector);
    VHDKIT_TRY(file_->read_at(file_size_ - kSector, footer_));
    if (std::memcmp(footer_.data() + footer::kCookie, "conectix", 8) != 0)
      return fail(bad("the footer in the last sector has no \"conectix\" cookie"));
    if (load_be<uint32_t>(footer_.data() + footer::kChecksum) != vhd_checksum(footer_, footer::kChecksum))
      return fail(bad("the footer checksum does not match its contents"));
    uint32_t disk_type = load_be<uint32_t>(footer_.data() + footer::kDiskType);
    if (disk_type == footer::kFixed) {
      return fail(ReturnCode::NotSupported, path(),
                  "a fixed VHD cannot be compacted: it has no block table, every virtual byte has its own "
                  "place in the file, so there are no blocks to release or move (Retrim, which will punch "
                  "holes in the host file instead, will handle fixed disks later)");
    }
    if (disk_type != footer::kDynamic && disk_type != footer::kDifferencing)
      return fail(bad(fmt::format("the footer's disk type {} is not fixed, dynamic or differencing", disk_type)));
    type_ = disk_type == footer::kDynamic ? disk::DiskType::Dynamic : disk::DiskType::Differencing;
    virtual_size_ = load_be<uint64_t>(footer_.data() + footer::kCurrentSize);

    // The footer copy at offset 0 must be there (every dynamic disk has one): it is what stays in place.
    std::array<std::byte, 8> cookie{};
    VHDKIT_TRY(file_->read_at(0, cookie));
    if (std::memcmp(cookie.data(), "conectix", 8) != 0)
      return fail(bad("the footer copy at offset 0 has no \"conectix\" cookie"));
    fixed_.push_back({0, kSector});

    uint64_t header_at = load_be<uint64_t>(footer_.data() + footer::kDataOffset);
    if (header_at % kSector != 0 || header_at + header::kSize > file_size_ - kSector)
      return fail(bad(fmt::format("the footer's data offset {} does not point at a dynamic header inside the "
                                  "file", header_at)));
    Bytes hdr(header::kSize);
    VHDKIT_TRY(file_->read_at(header_at, hdr));
    if (std::memcmp(hdr.data() + header::kCookie, "cxsparse", 8) != 0)
      return fail(bad("the dynamic disk header has no \"cxsparse\" cookie"));
    if (load_be<uint32_t>(hdr.data() + header::kChecksum) != vhd_checksum(hdr, header::kChecksum))
      return fail(bad("the dynamic disk header checksum does not match its contents"));
    fixed_.push_back({header_at, header::kSize});

    block_size_ = load_be<uint32_t>(hdr.data() + header::kBlockSize);
    if (block_size_ < kSector || !is_power_of_two(block_size_) || block_size_ > (256u << 20))
      return fail(bad(fmt::format("the dynamic header's block size {} is not a power of two between 512 bytes "
                                  "and 256 MiB", block_size_)));
    bitmap_bytes_ = round_up(div_round_up(block_size_ / kSector, 8), kSector);
    uint32_t entries = load_be<uint32_t>(hdr.data() + header::kMaxTableEntries);
    if (uint64_t{entries} * block_size_ < virtual_size_)
      return fail(bad(fmt::format("the BAT has {} entries of {} bytes, too few for the virtual size {}",
                                  entries, block_size_, virtual_size_)));
    uint64_t bat_at = load_be<uint64_t>(hdr.data() + header::kTableOffset);
    uint64_t bat_bytes = round_up(uint64_t{entries} * 4, kSector);
    if (bat_at % kSector != 0 || bat_at + bat_bytes > file_size_ - kSector)
      return fail(bad(fmt::format("the BAT at offset {} ({} entries) does not fit inside the file", bat_at,
                                  entries)));
    bat_offset_ = bat_at;
    fixed_.push_back({bat_at, bat_bytes});
    Bytes raw(bat_bytes);
    VHDKIT_TRY(file_->read_at(bat_at, raw));
    bat_sectors_ = raw;
    bat_.resize(entries);
    for (uint32_t i = 0; i < entries; ++i) bat_[i] = load_be<uint32_t>(raw.data() + 4 * i);

    if (type_ == disk::DiskType::Differencing) VHDKIT_TRY(load_locators(hdr));
    return validate_slots();
  }

  // Parent locator data lives between the structures; it never moves.
  Status load_locators(const Bytes& hdr) {
    for (int i = 0; i < 8; ++i) {
      const std::byte* e = hdr.data() + header::kParentLocators + i * header::kLocatorEntry;
      uint32_t code = load_be<uint32_t>(e);
      if (code == 0) continue;
      uint32_t space = load_be<uint32_t>(e + 4);
      uint32_t length = load_be<uint32_t>(e + 8);
      uint64_t at = load_be<uint64_t>(e + 16);
      // The spec counts Platform Data Space in sectors; some writers store bytes. Reserve the larger reading
      // that stays inside the file, never less than the data itself.
      uint64_t reserve = round_up(length, kSector);
      uint64_t as_sectors = uint64_t{space} * kSector;
      if (at + as_sectors <= file_size_ - kSector) reserve = std::max(reserve, as_sectors);
      else reserve = std::max<uint64_t>(reserve, round_up(space, kSector));
      if (at + reserve > file_size_ - kSector)
        return fail(bad(fmt::format("parent locator {} (offset {}, {} bytes) lies past the end of the file", i,
                                    at, reserve)));
      fixed_.push_back({at, reserve});
    }
    return ok();
  }

  // Refuses an image whose blocks overlap each other or the metadata, or lie past the footer: compacting
  // it would move or release bytes something else still uses.
  Status validate_slots() {
    const uint64_t slot = bitmap_bytes_ + block_size_;
    std::vector<Extent> used = fixed_;
    std::vector<uint64_t> owner(fixed_.size(), UINT64_MAX);
    for (uint64_t b = 0; b < bat_.size(); ++b) {
      if (bat_[b] == kUnallocated) continue;
      uint64_t at = uint64_t{bat_[b]} * kSector;
      if (at + slot > file_size_ - kSector)
        return fail(bad(fmt::format("BAT entry {} points at offset {}, past the end of the data area", b, at)));
      used.push_back({at, slot});
      owner.push_back(b);
    }
    std::vector<size_t> order(used.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return used[a].offset < used[b].offset; });
    for (size_t k = 1; k < order.size(); ++k) {
      const Extent& prev = used[order[k - 1]];
      const Extent& cur = used[order[k]];
      if (cur.offset < prev.end()) {
        auto name = [&](size_t i) {
          return owner[i] == UINT64_MAX ? fmt::format("metadata at offset {}", used[i].offset)
                                        : fmt::format("BAT entry {}", owner[i]);
        };
        return fail(bad(fmt::format("{} overlaps {}", name(order[k]), name(order[k - 1]))));
      }
    }
    return ok();
  }

  Result<Verdict> classify_differencing(uint64_t block, std::span<const std::byte> bitmap,
                                        std::span<const std::byte> data) {
    if (all_zero(bitmap)) return Verdict::Release;  // nothing present: reads already come from the parent
    const uint64_t start = block * block_size_;
    if (start >= virtual_size_) return Verdict::Keep;
    const uint64_t len = std::min<uint64_t>(block_size_, virtual_size_ - start);
    parent_buf_.resize(len);
    VHDKIT_TRY(child_view_->parent()->read(start, parent_buf_));
    for (uint64_t s = 0; s < block_size_ / kSector; ++s) {
      bool present = (static_cast<uint8_t>(bitmap[s / 8]) >> (7 - s % 8)) & 1;
      if (!present) continue;
      if ((s + 1) * kSector > len) return Verdict::Keep;  // present past the end: keep as it is
      if (std::memcmp(data.data() + s * kSector, parent_buf_.data() + s * kSector, kSector) != 0)
        return Verdict::Keep;
    }
    return Verdict::Release;
  }

  Status write_bat_sectors(const std::set<uint64_t>& sectors) {
    for (uint64_t sec : sectors) {
      std::byte* p = bat_sectors_.data() + sec * kSector;
      for (uint64_t i = 0; i < kSector / 4; ++i) {
        uint64_t entry = sec * (kSector / 4) + i;
        if (entry < bat_.size()) store_be<uint32_t>(p + 4 * i, bat_[entry]);
      }
      VHDKIT_TRY(file_->write_at(bat_offset_ + sec * kSector, std::span<const std::byte>(p, kSector)));
    }
    return ok();
  }

  std::unique_ptr<io::File> file_;
  std::unique_ptr<disk::VirtualDisk> child_view_;  // differencing: the child opened to read its parent chain
  disk::DiskType type_ = disk::DiskType::Dynamic;
  uint64_t file_size_ = 0;
  uint64_t virtual_size_ = 0;
  uint64_t block_size_ = 0;
  uint64_t bitmap_bytes_ = 0;
  uint64_t bat_offset_ = 0;
  Bytes footer_;
  Bytes bat_sectors_;  // the BAT as stored, so that sector writes keep any bytes past the last entry
  std::vector<uint32_t> bat_;
  std::vector<Extent> fixed_;
  Bytes buf_;
  Bytes parent_buf_;
};

}  // namespace

Result<std::unique_ptr<compact::CompactableImage>> open_for_compaction(io::Env& env, const std::string& path,
                                                                       io::Access access) {
  VHDKIT_ASSIGN(auto image, VhdCompaction::open(env, path, access));
  return std::unique_ptr<compact::CompactableImage>(std::move(image));
}

}  // namespace vhdkit::vhd
