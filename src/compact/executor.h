// SPDX-License-Identifier: Apache-2.0
// The executor: scans, plans and carries out a compaction on one opened image, through the durable steps
// of CompactableImage, with progress and cancellation at safe points.
#pragma once

#include "compact/compact.h"
#include "compact/compactable.h"

namespace vhdkit::compact {

// How many bytes of block data one batch of moves copies before its flush and remap(): few flushes, yet a
// cancellation or a power cut never loses more than one batch of copying.
inline constexpr uint64_t kMoveBatchBytes = 256ull << 20;

// Runs the compaction (or, for Action::DryRun, only the scan and the plan) on an image already opened and
// locked. The image must be writable unless options.action is DryRun.
Result<Report> run_compaction(CompactableImage& image, const Options& options, Observer& observer);

}  // namespace vhdkit::compact
