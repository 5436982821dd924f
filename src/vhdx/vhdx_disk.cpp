// SPDX-License-Identifier: Apache-2.0
#include "vhdx/vhdx_disk.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "disk/parent_chain.h"
#include "vhdx/parent.h"

namespace vhdkit::vhdx {
namespace {

using disk::MapExtent;

bool reads_parent(uint8_t state) {
  switch (static_cast<PayloadState>(state)) {
    case PayloadState::NotPresent:
    case PayloadState::Undefined:
    case PayloadState::Unmapped:
    case PayloadState::UnmappedV095: return true;
    default: return false;
  }
}

// Appends e to a map, merging it into the last extent when they describe one uniform run.
void push_extent(std::vector<MapExtent>& out, MapExtent e) {
  if (e.length == 0) return;
  if (!out.empty()) {
    MapExtent& last = out.back();
    bool offsets_follow =
        (!last.offset && !e.offset) || (last.offset && e.offset && *last.offset + last.length == *e.offset);
    if (last.start + last.length == e.start && last.depth == e.depth && last.present == e.present &&
        last.zero == e.zero && last.data == e.data && offsets_follow) {
      last.length += e.length;
      return;
    }
  }
  out.push_back(e);
}

class VhdxDisk final : public disk::VirtualDisk {
 public:
  VhdxDisk(std::unique_ptr<Image> image, std::unique_ptr<disk::VirtualDisk> parent,
           std::optional<std::string> parent_path, std::vector<std::string> notes)
      : image_(std::move(image)),
        parent_(std::move(parent)),
        parent_path_(std::move(parent_path)),
        notes_(std::move(notes)) {}

  ~VhdxDisk() override {
    // Unflushed allocations would be lost: make them durable if the caller forgot (errors have nowhere to go).
    if (!pending_.empty()) (void)flush();
  }

  Image& image() { return *image_; }
  const std::string& path() const override { return image_->path(); }
  uint64_t virtual_size() const override { return image_->metadata().virtual_size; }

  disk::DiskInfo info() const override {
    const Metadata& m = image_->metadata();
    const BatGeometry& g = image_->geometry();
    disk::DiskInfo i;
    i.format = disk::Format::Vhdx;
    i.type = m.has_parent              ? disk::DiskType::Differencing
             : m.leave_block_allocated ? disk::DiskType::Fixed
                                       : disk::DiskType::Dynamic;
    i.virtual_size = m.virtual_size;
    i.block_size = m.block_size;
    i.block_count = g.payload_blocks;
    for (uint64_t b = 0; b < g.payload_blocks; ++b)
      if (entry(b).has_data()) ++i.blocks_allocated;
    i.logical_sector_size = m.logical_sector_size;
    i.physical_sector_size = m.physical_sector_size;
    i.file_size = image_->file_size();
    std::u16string c = image_->file_identifier().creator;
    i.creator.assign(c.begin(), c.end());
    i.disk_id = m.page83.to_string_ms();
    if (m.has_parent) i.parent_path = parent_path_ ? parent_path_ : m.parent_locator->get("relative_path");
    // Counted by state value (three bits), then named in name order: 64 Mi blocks take no string work each.
    uint64_t by_state[8] = {};
    for (uint64_t b = 0; b < g.payload_blocks; ++b) ++by_state[entry(b).state & 7];
    std::map<std::string, uint64_t> states;
    for (uint8_t s = 0; s < 8; ++s)
      if (by_state[s]) states[payload_state_name(s)] = by_state[s];
    for (const auto& [name, n] : states) i.details.emplace_back(fmt::format("blocks {}", name), std::to_string(n));
    i.details.emplace_back("chunk ratio", std::to_string(g.chunk_ratio));
    i.details.emplace_back("leave blocks allocated", m.leave_block_allocated ? "yes" : "no");
    i.details.emplace_back("log", image_->replayed_log().empty()
                                      ? "clean"
                                      : fmt::format("{} entries replayed{}", image_->replayed_log().entry_count,
                                                    image_->access() == io::Access::ReadOnly ? " in memory" : ""));
    i.details.emplace_back("data write guid", image_->header().data_write_guid.to_string_ms());
    if (m.has_parent) {
      for (const auto& [k, v] : m.parent_locator->entries) i.details.emplace_back("parent locator " + k, v);
    }
    return i;
  }

  Status read(uint64_t offset, std::span<std::byte> buf) override {
    VHDKIT_TRY(check_range(offset, buf.size()));
    return for_each_piece(offset, buf.size(), [&](uint64_t b, uint64_t in_block, uint64_t done, uint64_t n) {
      return read_piece(b, in_block, buf.subspan(done, n));
    });
  }

  Status write(uint64_t offset, std::span<const std::byte> buf) override {
    if (image_->access() != io::Access::ReadWrite)
      return fail(ReturnCode::InvalidState, path(), "the image is open read-only");
    VHDKIT_TRY(check_range(offset, buf.size()));
    if (buf.empty()) return ok();
    VHDKIT_TRY(image_->begin_update(ContentChange::Visible));
    return for_each_piece(offset, buf.size(), [&](uint64_t b, uint64_t in_block, uint64_t done, uint64_t n) {
      return write_piece(b, in_block, buf.subspan(done, n));
    });
  }

  Status flush() override {
    if (image_->access() != io::Access::ReadWrite) return ok();
    VHDKIT_TRY(image_->file().flush());  // the data before the BAT entries that point at it
    if (!pending_.empty()) {
      std::vector<std::pair<uint64_t, uint64_t>> changes;
      for (auto [b, offset] : pending_)
        changes.emplace_back(image_->geometry().payload_index(b),
                             make_bat_entry(static_cast<uint8_t>(PayloadState::FullyPresent), offset));
      LogTransaction tx;
      image_->add_bat_changes(tx, changes);
      VHDKIT_TRY(image_->commit(tx));
      pending_.clear();
    }
    return image_->close_log();
  }

  Result<std::vector<MapExtent>> map() override {
    std::vector<MapExtent> out;
    std::optional<std::vector<MapExtent>> parent_map;
    size_t parent_at = 0;  // the first parent extent that may still overlap what is asked for next
    auto from_parent = [&](uint64_t start, uint64_t length) -> Status {
      if (!parent_) {
        push_extent(out, {start, length, 1, false, false, false, std::nullopt});
        return ok();
      }
      if (!parent_map) {
        VHDKIT_ASSIGN(parent_map, parent_->map());
      }
      uint64_t end = start + length;
      // Ranges are asked for in increasing order: the parent's map is walked once for the whole child map.
      while (parent_at < parent_map->size() &&
             (*parent_map)[parent_at].start + (*parent_map)[parent_at].length <= start)
        ++parent_at;
      for (size_t k = parent_at; k < parent_map->size(); ++k) {
        const MapExtent& p = (*parent_map)[k];
        if (p.start >= end) break;
        uint64_t lo = std::max(start, p.start), hi = std::min(end, p.start + p.length);
        if (lo >= hi) continue;
        MapExtent e = p;
        e.start = lo;
        e.length = hi - lo;
        e.depth = p.depth + 1;
        if (p.offset) e.offset = *p.offset + (lo - p.start);
        push_extent(out, e);
        start = hi;
      }
      if (start < end) push_extent(out, {start, end - start, 1, false, true, false, std::nullopt});
      return ok();
    };
    const BatGeometry& g = image_->geometry();
    bool differencing = image_->metadata().has_parent;
    for (uint64_t b = 0; b < g.payload_blocks; ++b) {
      uint64_t start = b * g.block_size;
      uint64_t length = std::min<uint64_t>(g.block_size, virtual_size() - start);
      // A page of equal entries without data (a 64 TiB disk's absent blocks) is mapped as one range.
      if (b % BatTable::kPageEntries == 0 && b + BatTable::kPageEntries <= g.payload_blocks &&
          pending_.lower_bound(b) == pending_.lower_bound(b + BatTable::kPageEntries)) {
        std::optional<uint64_t> v = image_->bat().uniform_page(b);
        PayloadState st = v ? static_cast<PayloadState>(bat_state(*v)) : PayloadState::FullyPresent;
        if (v && !holds_data(st) && is_known_payload_state(bat_state(*v))) {
          uint64_t run = std::min<uint64_t>(BatTable::kPageEntries * g.block_size, virtual_size() - start);
          if (st == PayloadState::Zero)
            push_extent(out, {start, run, 0, true, true, false, std::nullopt});
          else if (differencing)
            VHDKIT_TRY(from_parent(start, run));
          else
            push_extent(out, {start, run, 0, false, true, false, std::nullopt});
          b += BatTable::kPageEntries - 1;
          continue;
        }
      }
      BlockEntry e = entry(b);
      if (e.payload_state() == PayloadState::FullyPresent) {
        push_extent(out, {start, length, 0, true, false, true, e.file_offset});
      } else if (e.payload_state() == PayloadState::Zero) {
        push_extent(out, {start, length, 0, true, true, false, std::nullopt});
      } else if (e.payload_state() == PayloadState::PartiallyPresent) {
        VHDKIT_ASSIGN(Bytes bits, image_->block_bitmap(b));
        uint32_t ls = g.logical_sector_size;
        for (uint64_t s = 0; s * ls < length;) {
          bool present = sector_bit(bits, s);
          uint64_t t = s;
          while (t * ls < length && sector_bit(bits, t) == present) ++t;
          uint64_t lo = start + s * ls, n = std::min(length, t * ls) - s * ls;
          if (present)
            push_extent(out, {lo, n, 0, true, false, true, e.file_offset + s * ls});
          else
            VHDKIT_TRY(from_parent(lo, n));
          s = t;
        }
      } else if (differencing) {
        VHDKIT_TRY(from_parent(start, length));
      } else {
        push_extent(out, {start, length, 0, false, true, false, std::nullopt});
      }
    }
    return out;
  }

  std::vector<std::string> check() override {
    std::vector<std::string> problems = notes_;
    const HeaderSection& hs = image_->header_section();
    for (int i = 0; i < 2; ++i) {
      if (!hs.headers[i].valid)
        problems.push_back(fmt::format("header {} (at {} KiB) is not valid ({}); the other header is in use", i + 1,
                                       kHeaderOffsets[i] / KiB, hs.headers[i].problem));
      if (!hs.region_tables[i].valid)
        problems.push_back(fmt::format("region table {} (at {} KiB) is not valid ({}); the other copy is in use", i + 1,
                                       kRegionTableOffsets[i] / KiB, hs.region_tables[i].problem));
    }
    if (hs.region_tables[0].valid && hs.region_tables[1].valid) {
      const auto& a = hs.region_tables[0].table.entries;
      const auto& b = hs.region_tables[1].table.entries;
      bool same = a.size() == b.size();
      for (size_t i = 0; same && i < a.size(); ++i)
        same = a[i].guid == b[i].guid && a[i].file_offset == b[i].file_offset && a[i].length == b[i].length &&
               a[i].required == b[i].required;
      if (!same) problems.push_back("the two region tables differ; the first is in use");
    }
    // A LogGuid with no valid entry behind it (a writer stopped between the header update that opens a log and
    // its first entry) asks no reader to replay anything: qemu and vhdkit read the file as it is.
    if (!image_->header().log_guid.is_zero() && image_->replayed_log().entry_count > 0)
      problems.push_back(fmt::format("the log needs replaying ({} entries; they were replayed in memory only)",
                                     image_->replayed_log().entry_count));
    // Named for the first few only (a hostile table may set them in millions of entries), then counted.
    const BatTable& bat = image_->bat();
    const BatGeometry& g = image_->geometry();
    uint64_t reserved_bits = 0;
    auto note_reserved = [&](uint64_t entry, uint64_t index) {
      if (bat_reserved_bits(entry) == 0) return;
      if (reserved_bits++ < 5) problems.push_back(fmt::format("BAT entry {} has reserved bits set", index));
    };
    for (uint64_t b = 0; b < g.payload_blocks; ++b) note_reserved(bat.payload(b), g.payload_index(b));
    for (uint64_t chunk = 0; chunk < g.bitmap_blocks; ++chunk)
      if (g.bitmap_index(chunk) < bat.size()) note_reserved(bat.bitmap(chunk), g.bitmap_index(chunk));
    if (reserved_bits > 5)
      problems.push_back(fmt::format("{} more BAT entries have reserved bits set", reserved_bits - 5));
    return problems;
  }

  disk::VirtualDisk* parent() override { return parent_.get(); }
  io::File& file() override { return image_->file(); }

 private:
  BlockEntry entry(uint64_t b) const {
    auto it = pending_.find(b);
    if (it != pending_.end()) return {static_cast<uint8_t>(PayloadState::FullyPresent), it->second};
    return image_->block(b);
  }

  Status check_range(uint64_t offset, uint64_t len) const {
    if (offset > virtual_size() || len > virtual_size() - offset)
      return fail(ReturnCode::InvalidParameter, path(),
                  fmt::format("range {}+{} lies past the end of the {}-byte disk", offset, len, virtual_size()));
    return ok();
  }

  template <class Fn>
  Status for_each_piece(uint64_t offset, uint64_t length, Fn&& fn) {
    uint64_t bs = image_->metadata().block_size;
    for (uint64_t done = 0; done < length;) {
      uint64_t pos = offset + done;
      uint64_t in_block = pos % bs;
      uint64_t n = std::min(length - done, bs - in_block);
      VHDKIT_TRY(fn(pos / bs, in_block, done, n));
      done += n;
    }
    return ok();
  }

  Status read_parent(uint64_t voffset, std::span<std::byte> out) {
    if (!parent_)
      return fail(ReturnCode::InvalidState, path(),
                  "this read needs the parent disk, which was not opened (it was not found or does not match)");
    uint64_t psize = parent_->virtual_size();
    uint64_t n = voffset >= psize ? 0 : std::min<uint64_t>(out.size(), psize - voffset);
    if (n) VHDKIT_TRY(parent_->read(voffset, out.first(n)));
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(n), out.end(), std::byte{0});
    return ok();
  }

  Status read_piece(uint64_t b, uint64_t in_block, std::span<std::byte> out) {
    BlockEntry e = entry(b);
    uint64_t voffset = b * image_->metadata().block_size + in_block;
    switch (e.payload_state()) {
      case PayloadState::FullyPresent: return image_->read_file(e.file_offset + in_block, out);
      case PayloadState::Zero: std::fill(out.begin(), out.end(), std::byte{0}); return ok();
      case PayloadState::PartiallyPresent: {
        VHDKIT_ASSIGN(Bytes bits, image_->block_bitmap(b));
        uint32_t ls = image_->metadata().logical_sector_size;
        for (uint64_t done = 0; done < out.size();) {
          uint64_t s = (in_block + done) / ls;
          bool present = sector_bit(bits, s);
          uint64_t end = done;
          while (end < out.size() && sector_bit(bits, (in_block + end) / ls) == present)
            end = std::min<uint64_t>(out.size(), ((in_block + end) / ls + 1) * ls - in_block);
          std::span<std::byte> part = out.subspan(done, end - done);
          if (present)
            VHDKIT_TRY(image_->read_file(e.file_offset + in_block + done, part));
          else
            VHDKIT_TRY(read_parent(voffset + done, part));
          done = end;
        }
        return ok();
      }
      default:
        if (image_->metadata().has_parent && reads_parent(e.state)) return read_parent(voffset, out);
        std::fill(out.begin(), out.end(), std::byte{0});
        return ok();
    }
  }

  Status write_piece(uint64_t b, uint64_t in_block, std::span<const std::byte> data) {
    BlockEntry e = entry(b);
    io::File& f = image_->file();
    if (e.payload_state() == PayloadState::FullyPresent) return f.write_at(e.file_offset + in_block, data);

    uint64_t bs = image_->metadata().block_size;
    bool keeps_old_bytes =
        e.payload_state() == PayloadState::PartiallyPresent || (image_->metadata().has_parent && reads_parent(e.state));
    uint64_t target = e.file_offset;
    // A fixed disk's blocks keep their space in every state (LeaveBlockAllocated): write there.
    bool has_space = e.payload_state() == PayloadState::PartiallyPresent ||
                     (image_->metadata().leave_block_allocated && e.file_offset != 0);
    if (!has_space) {
      // A new block at the end of the file: beyond the old end, it reads as zeros until written.
      if (!next_block_) next_block_ = image_->allocation_end();
      target = *next_block_;
      *next_block_ += bs;
      VHDKIT_ASSIGN(uint64_t size, f.size());
      if (size < target + bs) {
        VHDKIT_TRY(f.truncate(target + bs));
        image_->set_file_size(target + bs);
      }
    }
    if (keeps_old_bytes) {
      Bytes block(bs);
      VHDKIT_TRY(read_piece(b, 0, block));
      std::memcpy(block.data() + in_block, data.data(), data.size());
      VHDKIT_TRY(f.write_at(target, block));
    } else {
      VHDKIT_TRY(f.write_at(target + in_block, data));
    }
    pending_[b] = target;
    return ok();
  }

  std::unique_ptr<Image> image_;
  std::unique_ptr<disk::VirtualDisk> parent_;
  std::optional<std::string> parent_path_;
  std::vector<std::string> notes_;        // problems found while opening that did not stop it
  std::map<uint64_t, uint64_t> pending_;  // payload block -> file offset of blocks written, not yet in the BAT
  std::optional<uint64_t> next_block_;
};

// A VHDX's link adapter for the one parent-chain resolver (disk/parent_chain.h): the locator's paths, and
// the parent's DataWriteGuid against parent_linkage (or parent_linkage2), and its size.
Result<std::unique_ptr<disk::VirtualDisk>> open_chain(io::Env& env, std::unique_ptr<io::File> file,
                                                      const disk::OpenOptions& options, disk::ParentChain& chain) {
  VHDKIT_TRY(chain.enter(env, *file));
  VHDKIT_ASSIGN(std::unique_ptr<Image> image, Image::open(std::move(file), options.access));
  const Metadata& m = image->metadata();
  std::vector<std::string> notes;
  if (!m.has_parent || options.parents == disk::ParentPolicy::Skip)
    return std::make_unique<VhdxDisk>(std::move(image), nullptr, std::nullopt, std::move(notes));

  const std::string path = image->path();
  std::string linkage_text = *m.parent_locator->get("parent_linkage");
  auto linkage = Guid::parse_ms(linkage_text);
  if (!linkage)
    return fail(ReturnCode::Failed, path,
                fmt::format("Parent Locator: parent_linkage \"{}\" is not a GUID", linkage_text));
  std::optional<Guid> linkage2;
  if (auto l2 = m.parent_locator->get("parent_linkage2")) linkage2 = Guid::parse_ms(*l2);

  disk::ParentLink link;
  for (const std::string& candidate : parent_candidates(*m.parent_locator, path))
    link.candidates.push_back({candidate, "the parent locator"});
  link.open = [&](std::unique_ptr<io::File> pfile, disk::ParentChain& c) {
    disk::OpenOptions popts = options;
    popts.access = io::Access::ReadOnly;
    return open_chain(env, std::move(pfile), popts, c);
  };
  const uint64_t size = m.virtual_size;
  link.mismatch = [&](disk::VirtualDisk& parent, const std::string& candidate) -> std::optional<std::string> {
    Image* pimage = image_of(parent);
    if (!pimage) return fmt::format("the parent {} is not a VHDX", candidate);
    Guid pguid = pimage->header().data_write_guid;
    if (pguid != *linkage && (!linkage2 || pguid != *linkage2))
      return fmt::format(
          "parent linkage mismatch: the child expects its parent's DataWriteGuid to be {{{}}}, "
          "but {} has {{{}}} (the parent changed after the child was made)",
          linkage->to_string_ms(), candidate, pguid.to_string_ms());
    if (parent.virtual_size() != size)
      return fmt::format("the parent {} is {} bytes, the child {} bytes", candidate, parent.virtual_size(), size);
    return std::nullopt;
  };
  VHDKIT_ASSIGN(disk::ResolvedParent resolved, disk::resolve_parent(env, path, link, options.parents, chain));
  if (resolved.problem) notes.push_back(*resolved.problem);
  std::optional<std::string> parent_path;
  if (resolved.disk) parent_path = resolved.path;
  return std::make_unique<VhdxDisk>(std::move(image), std::move(resolved.disk), std::move(parent_path),
                                    std::move(notes));
}

}  // namespace

Result<std::unique_ptr<disk::VirtualDisk>> open_disk(io::Env& env, std::unique_ptr<io::File> file,
                                                     const disk::OpenOptions& options) {
  disk::ParentChain chain;
  return open_chain(env, std::move(file), options, chain);
}

Image* image_of(disk::VirtualDisk& disk) {
  auto* v = dynamic_cast<VhdxDisk*>(&disk);
  return v ? &v->image() : nullptr;
}

}  // namespace vhdkit::vhdx
