// SPDX-License-Identifier: Apache-2.0
// An LVM2 physical volume (LVM2's lib/format_text/layout.h and lib/label/label.h, read as a specification):
// a label sector ("LABELONE", CRC, the PV header with its data and metadata areas), each metadata area's
// header (" LVM2 x[5A%r0N*>", CRC) whose first raw location points at the current metadata text (CRC
// checked, the ring of the area unwrapped). The newest valid copy is parsed (lvm_metadata.h). Used: all of
// the PV outside its physical extents (label, metadata areas, anything after the last extent), and what
// each linear LV's file system uses, mapped back through its segments. A segment of any other type (thin,
// raid, mirror, snapshot, cache, striping) or an LV reaching another PV keeps the whole PV: its extents'
// meaning is not one LV's file system.
#include "fs/lvm.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "core/bytes.h"
#include "fs/lvm_disk.h"
#include "fs/lvm_metadata.h"
#include "fs/partition_table.h"
#include "fs/ranges.h"
#include "fs/readers.h"

namespace vhdkit::fs::detail {
namespace {

constexpr uint64_t kSector = 512;
constexpr std::string_view kLabelId = "LABELONE", kLabelType = "LVM2 001";
constexpr std::string_view kMdaMagic = " LVM2 x[5A%r0N*>";
constexpr uint64_t kMaxMetadataBytes = uint64_t{64} << 20;  // a VG's text is kilobytes; bound the read
constexpr size_t kMaxAreas = 8;

// LVM2's calc_crc: the reflected CRC-32 polynomial (0xEDB88320) from 0xf597a6cf, no final inversion.
constexpr std::array<uint32_t, 256> kCrcTable = [] {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    t[i] = c;
  }
  return t;
}();
uint32_t lvm_crc(std::span<const std::byte> data) {
  uint32_t crc = 0xf597a6cfu;
  for (std::byte b : data) crc = (crc >> 8) ^ kCrcTable[(crc ^ static_cast<uint8_t>(b)) & 0xFF];
  return crc;
}

std::string_view text_at(const std::byte* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

struct Area {
  uint64_t offset = 0, size = 0;  // bytes of the PV
};
struct Label {
  uint64_t sector = 0;
  std::string uuid;
  uint64_t device_size = 0;
  std::vector<Area> data, metadata;
};

std::optional<uint64_t> label_sector(std::span<const std::byte> head) {
  for (uint64_t s = 0; s < 4 && (s + 1) * kSector <= head.size(); ++s) {
    const std::byte* b = head.data() + s * kSector;
    if (text_at(b, 8) == kLabelId && text_at(b + 24, 8) == kLabelType && load_le<uint64_t>(b + 8) == s) return s;
  }
  return std::nullopt;
}

std::optional<std::string> parse_label(std::span<const std::byte> head, Label& l) {
  auto s = label_sector(head);
  if (!s) return "no LVM2 label";
  l.sector = *s;
  std::span<const std::byte> b = head.subspan(*s * kSector, kSector);
  if (load_le<uint32_t>(&b[16]) != lvm_crc(b.subspan(20))) return "the PV label's checksum does not match";
  const uint32_t off = load_le<uint32_t>(&b[20]);
  // The PV header: a 32-character UUID, the device size, then two lists of {offset, size} ended by zeros.
  if (off < 32 || off > kSector - 32 - 8) return "the PV header lies outside its label sector";
  l.uuid.assign(text_at(&b[off], 32));
  l.device_size = load_le<uint64_t>(&b[off + 32]);
  size_t p = off + 40;
  for (std::vector<Area>* list : {&l.data, &l.metadata}) {
    for (;;) {
      if (p + 16 > kSector) return "the PV header's area lists are not terminated";
      Area a{load_le<uint64_t>(&b[p]), load_le<uint64_t>(&b[p + 8])};
      p += 16;
      if (a.offset == 0 && a.size == 0) break;
      if (list->size() >= kMaxAreas) return "the PV header lists too many areas";
      list->push_back(a);
    }
  }
  if (l.data.size() != 1) return fmt::format("the PV has {} data areas (one expected)", l.data.size());
  return std::nullopt;
}

struct Copy {
  lvm::VgInfo vg;
  Area area;
};

// Reads one metadata area: its header, then the text its first raw location points at. nullopt + why when
// it is not a valid copy.
Result<std::optional<Copy>> read_area(disk::VirtualDisk& d, uint64_t pv, Area a, std::string& why) {
  if (a.size < 2 * kSector || a.size > kMaxMetadataBytes) {
    why = "a metadata area's size is out of range";
    return std::optional<Copy>();
  }
  std::array<std::byte, kSector> h{};
  VHDKIT_TRY(read_exact(d, pv + a.offset, h));
  if (text_at(&h[4], 16) != kMdaMagic || load_le<uint32_t>(&h[20]) != 1 ||
      load_le<uint32_t>(&h[0]) != lvm_crc(std::span<const std::byte>(h).subspan(4))) {
    why = "a metadata area's header is damaged";
    return std::optional<Copy>();
  }
  if (load_le<uint64_t>(&h[24]) != a.offset || load_le<uint64_t>(&h[32]) != a.size) {
    why = "a metadata area's header disagrees with the PV header";
    return std::optional<Copy>();
  }
  const uint64_t off = load_le<uint64_t>(&h[40]), len = load_le<uint64_t>(&h[48]);
  const uint32_t crc = load_le<uint32_t>(&h[56]), flags = load_le<uint32_t>(&h[60]);
  if (flags & 1) {  // RAW_LOCN_IGNORED: this copy is not kept up to date
    why = "a metadata area is marked ignored";
    return std::optional<Copy>();
  }
  if (off < kSector || off >= a.size || len == 0 || len > a.size - kSector) {
    why = "a metadata area's text location is out of range";
    return std::optional<Copy>();
  }
  // The area after its header is a ring: text that runs past the end continues right after the header.
  const uint64_t first = std::min(len, a.size - off);
  std::vector<std::byte> text(len);
  VHDKIT_TRY(read_exact(d, pv + a.offset + off, std::span(text).first(first)));
  if (first < len) VHDKIT_TRY(read_exact(d, pv + a.offset + kSector, std::span(text).subspan(first)));
  if (lvm_crc(text) != crc) {
    why = "a metadata text's checksum does not match";
    return std::optional<Copy>();
  }
  std::string_view t = text_at(text.data(), text.size());
  while (!t.empty() && t.back() == '\0') t.remove_suffix(1);
  lvm::Parsed parsed = lvm::parse_metadata(t);
  if (!parsed.vg) {
    why = parsed.error;
    return std::optional<Copy>();
  }
  return std::optional<Copy>(Copy{std::move(*parsed.vg), a});
}

struct Lv {
  const lvm::LvInfo* info = nullptr;
  std::vector<LvRun> runs;
};

// Checks the VG against this PV and maps every LV onto it. The reason when the PV must be kept whole.
std::optional<std::string> plan(const lvm::VgInfo& vg, const lvm::PvInfo& pv, uint64_t pv_offset, uint64_t size,
                                std::vector<Lv>& lvs) {
  const uint64_t eb = vg.extent_size * kSector;
  auto pe_bytes = checked_mul(pv.pe_count, eb);
  auto start = checked_mul(pv.pe_start, kSector);
  if (!pe_bytes || !start || !checked_add(*start, *pe_bytes) || *start + *pe_bytes > size)
    return "the PV's extents do not fit the partition";
  struct Alloc {
    uint64_t pe, count;
  };
  std::vector<Alloc> allocs;
  for (const lvm::LvInfo& info : vg.lvs) {
    Lv lv{&info, {}};
    std::vector<const lvm::Segment*> segs;
    for (const lvm::Segment& s : info.segments) segs.push_back(&s);
    std::sort(segs.begin(), segs.end(), [](auto* a, auto* b) { return a->start_extent < b->start_extent; });
    uint64_t next = 0;
    for (const lvm::Segment* s : segs) {
      if (s->type != "striped")
        return fmt::format("LV {} has a {} segment (only linear LVs are read)", info.name, s->type);
      if (s->stripe_count != 1) return fmt::format("LV {} is striped over {} PVs", info.name, s->stripe_count);
      if (s->pv != pv.name) return fmt::format("LV {} has extents on another PV ({})", info.name, s->pv);
      if (s->start_extent != next) return fmt::format("LV {}'s segments do not follow each other", info.name);
      if (s->pv_extent > pv.pe_count || s->extent_count > pv.pe_count - s->pv_extent)
        return fmt::format("LV {} reaches past the PV's last extent", info.name);
      next += s->extent_count;
      allocs.push_back({s->pv_extent, s->extent_count});
      lv.runs.push_back({s->start_extent * eb, pv_offset + *start + s->pv_extent * eb, s->extent_count * eb});
    }
    lvs.push_back(std::move(lv));
  }
  std::sort(allocs.begin(), allocs.end(), [](const Alloc& a, const Alloc& b) { return a.pe < b.pe; });
  for (size_t i = 1; i < allocs.size(); ++i) {
    if (allocs[i].pe < allocs[i - 1].pe + allocs[i - 1].count) return "two LVs claim the same physical extent";
  }
  return std::nullopt;
}

}  // namespace

bool looks_like_lvm(std::span<const std::byte> head) { return label_sector(head).has_value(); }

Result<VolumeScan> read_lvm(disk::VirtualDisk& d, std::span<const std::byte> head, uint64_t offset, uint64_t size) {
  const std::string name = "lvm2";
  auto whole = [&](const std::string& why) { return kept_whole(offset, size, name, "lvm: " + why + ", kept whole"); };
  Label label;
  if (auto why = parse_label(head, label)) return whole(*why);
  if (label.device_size > size) return whole("the PV is larger than its partition");
  if (label.metadata.empty()) return whole("this PV holds no metadata area");
  std::optional<Copy> best;
  std::vector<std::string> notes;
  std::string last_why;
  for (const Area& a : label.metadata) {
    if (!checked_add(a.offset, a.size) || a.offset + a.size > size) return whole("a metadata area lies outside the PV");
    std::string why;
    VHDKIT_ASSIGN(auto copy, read_area(d, offset, a, why));
    if (!copy) {
      last_why = why;
      notes.push_back(
          fmt::format("lvm: the metadata area at byte {} of the PV at {} is not used: {}", a.offset, offset, why));
    } else if (!best || copy->vg.seqno > best->vg.seqno) {
      best = std::move(copy);
    }
  }
  if (!best) return whole("no valid copy of the metadata (" + last_why + ")");
  const lvm::VgInfo& vg = best->vg;
  const lvm::PvInfo* pv = nullptr;
  for (const lvm::PvInfo& p : vg.pvs)
    if (p.id == label.uuid) pv = &p;
  if (!pv) return whole(fmt::format("VG {} does not list this PV", vg.name));
  if (label.data[0].offset != pv->pe_start * kSector) return whole("the PV header's data area disagrees with pe_start");
  const uint64_t pe_begin = pv->pe_start * kSector;
  std::vector<Lv> lvs;
  if (auto why = plan(vg, *pv, offset, size, lvs)) return whole(fmt::format("VG {}: {}", vg.name, *why));
  const uint64_t pe_end = pe_begin + pv->pe_count * vg.extent_size * kSector;
  for (const Area& a : label.metadata) {
    if (a.offset < pe_end && a.offset + a.size > pe_begin) return whole("a metadata area overlaps the extents");
  }

  VolumeScan scan;
  scan.filesystem = name;
  scan.state = Volume::State::Read;
  scan.notes = std::move(notes);
  // The label, the metadata areas and whatever else lies outside the extents are the PV's own.
  scan.used.push_back({offset, pe_begin});
  scan.used.push_back({offset + pe_end, size - pe_end});
  std::vector<std::string> kept;
  for (Lv& lv : lvs) {
    LvDisk lvd(d, std::move(lv.runs));
    const std::string label_of = vg.name + "/" + lv.info->name;
    std::vector<ByteRange> lv_used;
    std::string fs, why;
    if (lvd.virtual_size() == 0) continue;
    std::vector<std::byte> lv_head(std::min(lvd.virtual_size(), kProbeBytes));
    VHDKIT_TRY(read_exact(lvd, 0, lv_head));
    const Reader* r = recognise(lv_head);
    if (!r) {
      why = "no file system recognised";
    } else if (r->name == "lvm") {
      why = "a PV inside an LV is not read";
    } else {
      VHDKIT_ASSIGN(VolumeScan s, r->read(lvd, lv_head, 0, lvd.virtual_size()));
      fs = s.filesystem;
      for (std::string& n : s.notes) scan.notes.push_back(label_of + ": " + n);
      if (s.state == Volume::State::Read) {
        for (ByteRange u : s.used) lvd.to_disk(u, lv_used);
      } else {
        why = s.reason;
      }
    }
    if (!why.empty()) {
      lvd.to_disk({0, lvd.virtual_size()}, lv_used);
      kept.push_back(fmt::format("LV {} ({}) kept whole: {}", label_of, fs.empty() ? "?" : fs, why));
    }
    scan.notes.push_back(fmt::format("lvm: LV {} ({} bytes): {}", label_of, lvd.virtual_size(),
                                     why.empty() ? fs + ", read" : fs + " kept whole: " + why));
    scan.used.insert(scan.used.end(), lv_used.begin(), lv_used.end());
  }
  scan.used = merge_ranges(std::move(scan.used));
  if (!kept.empty()) {
    scan.reason = kept.front();
    for (size_t i = 1; i < kept.size(); ++i) scan.reason += "; " + kept[i];
  }
  return scan;
}

}  // namespace vhdkit::fs::detail
