// SPDX-License-Identifier: Apache-2.0
// Retrim (Mode 2): gives the guest's unused space back to the host file system without moving a block, by
// punching holes (io::File::punch_hole, FALLOC_FL_PUNCH_HOLE | KEEP_SIZE) in the host file over every host
// block of a stored run (CompactableImage::stored_runs) that no file system uses or that reads as zeros.
//
// Safe in any order and at any power cut (D6): the image's metadata never changes (VHDX: only a new
// DataWriteGuid, written and flushed before the first hole, when a hole may cover unused non-zero bytes), a
// punched range reads zeros, and only ranges where zeros are right are punched: bytes no file system uses
// (the map is made through the whole parent chain) and bytes that already read zeros. In a differencing disk
// a sector the bitmap says the child does not hold reads the parent whatever the child's bytes, so a hole
// there changes nothing; a sector it holds reads the hole's zeros, which is right on unused or zero bytes.
//
// The host must punch holes: prepare() probes it (check_host_punches) before any job and any write, else
// NotSupported (32770) with the reason and the file unchanged. The file's size stays; its
// allocated bytes drop. Windows refuses sparse image files ("must not be sparse"): compact/unsparse.h fills
// the holes back.
#pragma once

#include "compact/compact.h"
#include "compact/compactable.h"
#include "compact/reclaim_policy.h"

namespace vhdkit::compact {

// The probe: a hole past the end of the file changes nothing, yet a host that cannot punch refuses it.
// NotSupported (32770) with the reason otherwise. prepare() asks it before any job and any write.
Status check_host_punches(io::File& file);

// How much of a stored run one step reads and punches before the next cancellation point.
inline constexpr uint64_t kRetrimWindow = 4 << 20;

// Runs Retrim on an opened image (read-write unless options.action is DryRun, which punches nothing and
// says what would be punched). `policy` holds the file systems' map (ReclaimPolicy::make with Mode::Retrim).
Result<Report> run_retrim(CompactableImage& image, const ReclaimPolicy& policy, const Options& options,
                          Observer& observer, Report report);

}  // namespace vhdkit::compact
