// SPDX-License-Identifier: Apache-2.0
// The mode policy: what each mode asks of a block, decided once per run from the mode and the map of what the
// guest's file systems use (fs/usage_map.h).
//   Prezeroed: the zero scan over the whole block (CompactableImage::classify).
//   Quick: release a block no file system uses a byte of; read no data.
//   Full: release a block no file system uses, or whose used bytes read as they would without it (zeros in a
//     dynamic disk, the parent's bytes in a differencing one): only the used bytes are read.
//   Pretrimmed: only what the image already says holds nothing (the layout's ZERO/UNMAPPED VHDX entries with file
//     space, and blocks that are all holes in the host file: CompactableImage::classify_holes); no data read.
//   Retrim (compact/retrim.h): maps the file systems, then punches holes; judges no slot.
// Where no file system could be read, Full falls back to Prezeroed and Quick to Pretrimmed (only the blocks
// the format already says hold nothing), as Hyper-V does for a disk it cannot read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compact/compact.h"
#include "compact/compactable.h"
#include "core/error.h"
#include "disk/virtual_disk.h"
#include "fs/usage_map.h"

namespace vhdkit::compact {

enum class ReclaimRule {
  ZeroScan,      // Prezeroed, and Full without a readable file system
  AlreadyFree,   // Pretrimmed: Quick without a readable file system
  Unused,        // Quick
  UnusedOrZero,  // Full
};

// Whether the file systems are mapped for a run: always for Full and Quick; for the other modes only when a
// report (dry run) wants to say what Full and Quick would do.
enum class MapUsage { IfModeNeeds, Always };

class ReclaimPolicy {
 public:
  static Result<ReclaimPolicy> make(Mode mode, disk::VirtualDisk& disk, MapUsage map);

  // The same map under another mode's rule (for a report of what each mode would release).
  ReclaimPolicy for_mode(Mode mode) const;

  // The verdict on a slot the layout did not already release: the zero scan (classify), nothing (AlreadyFree),
  // or the file-system rules (classify_used with the slot's used bytes; Unused asks only about slots without
  // any, so that no data is read).
  Result<Verdict> judge(CompactableImage& image, const Slot& slot) const;

  Mode mode() const { return mode_; }
  ReclaimRule rule() const { return rule_; }
  // The map of what the file systems use, when it was made.
  const std::optional<fs::UsageMap>& usage() const { return usage_; }
  // Whether a file-system rule (Unused, UnusedOrZero) could be applied: a map exists and it read a file system.
  bool filesystems_read() const { return usage_ && usage_->any_filesystem_read; }
  // The used bytes of [offset, offset + length) of the virtual disk, in virtual-disk offsets, sorted and disjoint
  // (nothing when no map was made).
  std::vector<fs::ByteRange> used_in(uint64_t offset, uint64_t length) const;
  // How the mode is carried out, for the report ("Full: ...", "Quick ran as Pretrimmed: ...").
  const std::string& note() const { return note_; }

 private:
  static ReclaimPolicy with_usage(Mode mode, std::optional<fs::UsageMap> usage);

  Mode mode_ = Mode::Prezeroed;
  ReclaimRule rule_ = ReclaimRule::ZeroScan;
  std::optional<fs::UsageMap> usage_;
  std::string note_;
};

}  // namespace vhdkit::compact
