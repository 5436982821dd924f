// SPDX-License-Identifier: Apache-2.0
// What the report says beyond the run itself: the volumes the file-system pass found, how many blocks each
// mode would release, the free bytes no mode can release (they share blocks with used data), and why a run
// gains nothing.
#pragma once

#include <span>

#include "compact/compact.h"
#include "compact/compactable.h"
#include "compact/reclaim_policy.h"

namespace vhdkit::compact {

// `layout` holds the slots with the verdicts the format gave them (Release: holds nothing), `judged` the same
// slots in the same order with the run's verdicts. The run's own mode is counted from `judged`; Quick from the
// map (no reads); in a dry run Full and Prezeroed too, by reading what they would read. Fills report.volumes,
// report.releases and report.stranded_free_bytes.
Status estimate_releases(CompactableImage& image, const ReclaimPolicy& policy, std::span<const Slot> layout,
                         std::span<const Slot> judged, Action action, Report& report);

// Sets report.gain_note once the plan is known: where free space is stranded (naming the block size and what
// would help), and, for a run that gains nothing, why.
void explain_gain(const ReclaimPolicy& policy, Report& report);

}  // namespace vhdkit::compact
