// SPDX-License-Identifier: Apache-2.0
#include "compact/reclaim_policy.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace vhdkit::compact {
namespace {

// Retrim maps them too: it punches what no file system uses.
bool maps_filesystems(Mode mode) { return mode == Mode::Full || mode == Mode::Quick || mode == Mode::Retrim; }

// "gpt partition at 1 MiB (Linux LVM, 24 MiB): LVM: not read yet, kept whole", for each volume kept whole.
std::vector<std::string> kept_whole(const fs::UsageMap& map) {
  std::vector<std::string> out;
  for (const fs::Volume& v : map.volumes) {
    if (v.state == fs::Volume::State::Read) continue;
    std::string where = v.table == "none" ? std::string("the bare disk")
                                          : fmt::format("the {} partition at byte {} ({})", v.table, v.offset, v.type);
    out.push_back(fmt::format("{}{}: {}", where, v.filesystem.empty() ? "" : " (" + v.filesystem + ")", v.reason));
  }
  return out;
}

std::string why_nothing_read(const fs::UsageMap& map) {
  std::vector<std::string> reasons = kept_whole(map);
  reasons.insert(reasons.end(), map.notes.begin(), map.notes.end());
  if (reasons.empty()) reasons.push_back("the disk holds no partition or file system we read");
  return fmt::format("{}", fmt::join(reasons, "; "));
}

std::string note_for(Mode mode, const fs::UsageMap& map) {
  std::string base = mode == Mode::Full
                         ? "Full: released the blocks no file system uses and those whose used bytes read as zeros"
                         : "Quick: released the blocks no file system uses (no data read)";
  std::vector<std::string> kept = kept_whole(map);
  if (kept.empty()) return base;
  return fmt::format("{}; kept whole, as {}: {}", base, mode == Mode::Full ? "Prezeroed" : "Pretrimmed",
                     fmt::join(kept, "; "));
}

}  // namespace

Result<ReclaimPolicy> ReclaimPolicy::make(Mode mode, disk::VirtualDisk& disk, MapUsage map) {
  std::optional<fs::UsageMap> usage;
  if (maps_filesystems(mode) || map == MapUsage::Always) {
    VHDKIT_ASSIGN(fs::UsageMap u, fs::map_usage(disk));
    usage = std::move(u);
  }
  return with_usage(mode, std::move(usage));
}

ReclaimPolicy ReclaimPolicy::for_mode(Mode mode) const { return with_usage(mode, usage_); }

ReclaimPolicy ReclaimPolicy::with_usage(Mode mode, std::optional<fs::UsageMap> usage) {
  ReclaimPolicy p;
  p.mode_ = mode;
  p.usage_ = std::move(usage);
  if (mode == Mode::Pretrimmed) {
    p.rule_ = ReclaimRule::AlreadyFree;
    p.note_ =
        "Pretrimmed: released only what the image already says holds nothing (VHDX blocks in the ZERO, UNMAPPED "
        "or UNDEFINED state that still named file space, and blocks whose whole range in the host file is a hole "
        "or an unwritten extent); no data read";
    return p;
  }
  if (mode == Mode::Retrim) {
    p.rule_ = ReclaimRule::ZeroScan;
    p.note_ = p.filesystems_read() ? "Retrim: punched holes in the host file over what no file system uses and over "
                                     "zero runs; no block moved"
                                   : "Retrim: no file system could be read, so only zero runs were punched: " +
                                         (p.usage_ ? why_nothing_read(*p.usage_) : std::string("not mapped"));
    return p;
  }
  if (!maps_filesystems(mode)) {
    p.rule_ = ReclaimRule::ZeroScan;
    p.note_ = "Prezeroed: released the blocks whose data reads as zeros";
    return p;
  }
  const bool full = mode == Mode::Full;
  if (p.filesystems_read()) {
    p.rule_ = full ? ReclaimRule::UnusedOrZero : ReclaimRule::Unused;
    p.note_ = note_for(mode, *p.usage_);
    return p;
  }
  p.rule_ = full ? ReclaimRule::ZeroScan : ReclaimRule::AlreadyFree;
  p.note_ = fmt::format("{} ran as {} (as Hyper-V does for a disk it cannot read): no file system could be read: {}",
                        full ? "Full" : "Quick",
                        full ? "Prezeroed (released all-zero blocks)"
                             : "Pretrimmed (released only blocks the image already marks as holding nothing)",
                        p.usage_ ? why_nothing_read(*p.usage_) : std::string("the disk was not mapped"));
  return p;
}

Result<Verdict> ReclaimPolicy::judge(CompactableImage& image, const Slot& slot) const {
  switch (rule_) {
    case ReclaimRule::ZeroScan: {
      // A block that is all holes in the host file is zeros without being read.
      VHDKIT_ASSIGN(std::optional<Verdict> from_holes, image.classify_holes(slot));
      if (from_holes) return *from_holes;
      return image.classify(slot);
    }
    case ReclaimRule::AlreadyFree: {
      VHDKIT_ASSIGN(std::optional<Verdict> from_holes, image.classify_holes(slot));
      return from_holes.value_or(Verdict::Keep);
    }
    case ReclaimRule::Unused:
    case ReclaimRule::UnusedOrZero: break;
  }
  std::optional<fs::ByteRange> extent = image.virtual_extent(slot);
  if (!extent) return Verdict::Keep;
  std::vector<fs::ByteRange> used = used_in(extent->offset, extent->length);
  if (rule_ == ReclaimRule::Unused && !used.empty()) return Verdict::Keep;
  return image.classify_used(slot, used);
}

std::vector<fs::ByteRange> ReclaimPolicy::used_in(uint64_t offset, uint64_t length) const {
  std::vector<fs::ByteRange> out;
  if (!usage_ || length == 0) return out;
  const uint64_t end = offset + length;  // a block of the virtual disk: cannot overflow
  const auto& used = usage_->used;
  auto it = std::upper_bound(used.begin(), used.end(), offset,
                             [](uint64_t v, const fs::ByteRange& r) { return v < r.end(); });
  for (; it != used.end() && it->offset < end; ++it) {
    uint64_t a = std::max(it->offset, offset), b = std::min(it->end(), end);
    if (a < b) out.push_back({a, b - a});
  }
  return out;
}

}  // namespace vhdkit::compact
