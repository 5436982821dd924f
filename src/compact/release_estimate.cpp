// SPDX-License-Identifier: Apache-2.0
#include "compact/release_estimate.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace vhdkit::compact {
namespace {

std::vector<VolumeReport> volume_reports(const fs::UsageMap& map) {
  std::vector<VolumeReport> out;
  for (const fs::Volume& v : map.volumes) {
    out.push_back({v.table, v.type, v.offset, v.size, v.filesystem, std::string(fs::to_string(v.state)), v.reason,
                   v.used_bytes, v.free_bytes});
  }
  return out;
}

uint64_t count_released(std::span<const Slot> slots) {
  return std::count_if(slots.begin(), slots.end(), [](const Slot& s) { return s.verdict == Verdict::Release; });
}

// The verdicts `policy` gives the layout's slots (those the format releases stay released).
Result<std::vector<Slot>> judge_all(CompactableImage& image, const ReclaimPolicy& policy,
                                    std::span<const Slot> layout) {
  std::vector<Slot> out(layout.begin(), layout.end());
  for (Slot& s : out) {
    if (s.verdict == Verdict::Release) continue;
    VHDKIT_ASSIGN(s.verdict, policy.judge(image, s));
  }
  return out;
}

// What Quick releases, from the map alone: the format's own releases, and (when a file system was read) every
// block none of whose bytes a file system uses. Counted without asking the format, so that a real run's
// verdicts stay as its own mode gave them.
uint64_t count_quick(CompactableImage& image, const ReclaimPolicy& policy, std::span<const Slot> layout) {
  uint64_t n = 0;
  for (const Slot& s : layout) {
    if (s.verdict == Verdict::Release) {
      ++n;
    } else if (policy.filesystems_read()) {
      std::optional<fs::ByteRange> extent = image.virtual_extent(s);
      n += extent && policy.used_in(extent->offset, extent->length).empty();
    }
  }
  return n;
}

void set_count(ModeReleases& r, Mode mode, uint64_t n) {
  if (mode == Mode::Full) r.full = n;
  if (mode == Mode::Quick) r.quick = n;
  if (mode == Mode::Prezeroed) r.prezeroed = n;
}

// Free bytes (unused by every file system) inside the blocks `verdicts` keeps.
uint64_t stranded(CompactableImage& image, const ReclaimPolicy& policy, std::span<const Slot> verdicts) {
  uint64_t n = 0;
  for (const Slot& s : verdicts) {
    if (s.verdict == Verdict::Release) continue;
    std::optional<fs::ByteRange> extent = image.virtual_extent(s);
    if (!extent) continue;
    uint64_t used = 0;
    for (const fs::ByteRange& r : policy.used_in(extent->offset, extent->length)) used += r.length;
    n += extent->length - used;
  }
  return n;
}

// "9.0 MiB (9437184 bytes)": readable, and exact.
std::string mib(uint64_t bytes) {
  return fmt::format("{:.1f} MiB ({} bytes)", static_cast<double>(bytes) / (1 << 20), bytes);
}

}  // namespace

Status estimate_releases(CompactableImage& image, const ReclaimPolicy& policy, std::span<const Slot> layout,
                         std::span<const Slot> judged, Action action, Report& report) {
  set_count(report.releases, policy.mode(), count_released(judged));
  if (!policy.usage()) return ok();
  report.volumes = volume_reports(*policy.usage());
  if (policy.mode() != Mode::Quick) report.releases.quick = count_quick(image, policy, layout);
  std::vector<Slot> full(judged.begin(), judged.end());
  if (action == Action::DryRun) {
    if (policy.mode() != Mode::Full) {
      VHDKIT_ASSIGN(full, judge_all(image, policy.for_mode(Mode::Full), layout));
      report.releases.full = count_released(full);
    }
    if (policy.mode() != Mode::Prezeroed) {
      // Prezeroed releases a subset of what Full releases (a block that reads as it would without it does so
      // on its used bytes too): only those are scanned whole.
      uint64_t n = 0;
      for (size_t i = 0; i < layout.size(); ++i) {
        if (layout[i].verdict == Verdict::Release) {
          ++n;
        } else if (full[i].verdict == Verdict::Release) {
          VHDKIT_ASSIGN(Verdict v, image.classify(layout[i]));
          n += v == Verdict::Release;
        }
      }
      report.releases.prezeroed = n;
    }
  }
  if (policy.filesystems_read()) report.stranded_free_bytes = stranded(image, policy, full);
  return ok();
}

void explain_gain(const ReclaimPolicy& policy, Report& report) {
  std::vector<std::string> says;
  if (report.stranded_free_bytes != 0) {
    says.push_back(fmt::format(
        "{} the file systems do not use lie in blocks of {} that also hold used data, so no mode can release "
        "them; defragmenting inside the guest (e4defrag) or an image with smaller blocks (qemu-img convert -O "
        "vhdx -o block_size=1M) would let more go",
        mib(report.stranded_free_bytes), mib(report.block_size)));
  }
  if (report.bytes_released == 0 && report.outcome == Outcome::Completed) {
    std::string why;
    if (report.blocks_allocated_before == 0) {
      why = "no block holds data";
    } else if (report.blocks_released != 0 || report.blocks_moved != 0) {
      why = "the blocks released leave no room at the end of the file to give back";
    } else {
      switch (policy.rule()) {
        case ReclaimRule::ZeroScan: why = "no allocated block reads as zeros"; break;
        case ReclaimRule::AlreadyFree: why = "no block is marked as holding nothing"; break;
        case ReclaimRule::Unused: why = "every allocated block holds bytes a file system uses"; break;
        case ReclaimRule::UnusedOrZero: why = "every allocated block holds non-zero bytes a file system uses"; break;
      }
    }
    says.insert(says.begin(), "nothing to release: " + why);
  }
  report.gain_note.clear();
  for (const std::string& s : says) report.gain_note += (report.gain_note.empty() ? "" : "; ") + s;
}

}  // namespace vhdkit::compact
