// SPDX-License-Identifier: Apache-2.0
#include "compact/executor.h"

#include <fmt/format.h>

#include <algorithm>

#include "compact/block_scan.h"
#include "compact/reclaim_policy.h"
#include "compact/release_estimate.h"
#include "compact/retrim.h"

namespace vhdkit::compact {
namespace {

// How many slots ahead of the one being judged the scan asks the kernel to start reading.
constexpr size_t kPrefetchSlots = 8;

// PercentComplete moves with bytes processed: the zero scan reads every allocated block (two thirds of the
// bar), then the moves copy the blocks that must move (the last third, spread over the bytes copied). The
// total is fixed before the scan so that the reported fraction never goes backwards.
class Progress {
 public:
  Progress(Observer& observer, uint64_t scan_bytes)
      : observer_(observer), scan_(scan_bytes), total_(std::max<uint64_t>(scan_bytes + scan_bytes / 2, 1)) {}

  void scanned(uint64_t bytes) { report(done_ += bytes); }
  void plan_moves(uint64_t move_bytes) { move_total_ = move_bytes; }
  void moved(uint64_t bytes) {
    moved_ += bytes;
    uint64_t budget = total_ - scan_;
    report(scan_ + (move_total_ ? budget * moved_ / move_total_ : 0));
  }
  void finished() { report(total_); }

 private:
  void report(uint64_t done) {
    done = std::min(done, total_);
    if (done < last_) return;
    last_ = done;
    observer_.progress(done, total_);
  }

  Observer& observer_;
  uint64_t scan_;
  uint64_t total_;
  uint64_t done_ = 0;
  uint64_t move_total_ = 0;
  uint64_t moved_ = 0;
  uint64_t last_ = 0;
};

Report initial_report(CompactableImage& image, const Options& options, const PlanInput& layout,
                      const ReclaimPolicy& policy) {
  Report r;
  r.path = image.path();
  r.format = image.format();
  r.mode = options.mode;
  r.dry_run = options.action == Action::DryRun;
  r.file_size_before = layout.file_size;
  r.file_size_after = layout.file_size;
  r.block_size = image.block_size();
  r.blocks_total = image.block_count();
  r.blocks_allocated_before = image.blocks_allocated();
  r.mode_note = policy.note();
  if (std::string note = image.note(); !note.empty()) r.mode_note += "; " + note;
  return r;
}

void set_file_size_after(Report& r, uint64_t size) {
  r.file_size_after = size;
  r.bytes_released = r.file_size_before - size;
}

}  // namespace

Result<Report> run_compaction(CompactableImage& image, const Options& options, Observer& observer) {
  VHDKIT_ASSIGN(PlanInput layout, image.layout());
  // The file systems are mapped before anything is read or written (Full, Quick; a dry run always, to say what
  // each mode would do): read-only, through the whole chain of a differencing disk.
  const bool dry = options.action == Action::DryRun;
  VHDKIT_ASSIGN(ReclaimPolicy policy,
                ReclaimPolicy::make(options.mode, image.disk(), dry ? MapUsage::Always : MapUsage::IfModeNeeds));
  Report report = initial_report(image, options, layout, policy);
  // Retrim moves no block: it punches holes inside the blocks where they stand.
  if (options.mode == Mode::Retrim) return run_retrim(image, policy, options, observer, std::move(report));
  // Slots that come with the verdict Release need no reading (the format knows they hold no data).
  uint64_t scan_bytes = 0;
  for (const Slot& slot : layout.slots)
    if (slot.verdict == Verdict::Keep) scan_bytes += slot.length;
  Progress progress(observer, scan_bytes);

  // The scan, in file order so that the reads are sequential; the policy decides what each mode reads.
  // Nothing is written yet, so stopping here leaves the file untouched.
  std::sort(layout.slots.begin(), layout.slots.end(), [](const Slot& a, const Slot& b) { return a.offset < b.offset; });
  const std::vector<Slot> as_laid_out = layout.slots;
  // The rules that read data ask the kernel for the start of the next slots while one is being judged, so that
  // several reads are in flight (a block with data usually shows it in its first piece).
  const bool reads_data = policy.rule() == ReclaimRule::ZeroScan || policy.rule() == ReclaimRule::UnusedOrZero;
  size_t prefetched = 0;
  for (size_t i = 0; i < layout.slots.size(); ++i) {
    Slot& slot = layout.slots[i];
    if (slot.verdict == Verdict::Release) continue;
    for (; reads_data && prefetched < layout.slots.size() && prefetched <= i + kPrefetchSlots; ++prefetched) {
      const Slot& next = layout.slots[prefetched];
      if (next.verdict == Verdict::Keep)
        image.file().prefetch(next.offset, std::min<uint64_t>(next.length, kFirstScanPiece + 4096));
    }
    if (observer.stop_requested()) {
      report.outcome = Outcome::Cancelled;
      return report;
    }
    VHDKIT_ASSIGN(slot.verdict, policy.judge(image, slot));
    progress.scanned(slot.length);
  }
  VHDKIT_TRY(estimate_releases(image, policy, as_laid_out, layout.slots, options.action, report));

  Plan plan = make_plan(layout);
  if (options.action == Action::DryRun) {
    // Exactly what a real run does next: the same plan.
    report.blocks_released = plan.releases.size();
    report.blocks_moved = plan.moves.size();
    set_file_size_after(report, plan.new_file_size);
    explain_gain(policy, report);
    progress.finished();
    return report;
  }
  if (!plan.changes_anything(layout.file_size)) {
    explain_gain(policy, report);
    progress.finished();
    return report;
  }

  auto cancelled = [&]() -> Result<Report> {
    report.outcome = Outcome::Cancelled;
    VHDKIT_TRY(image.finish());
    return report;
  };
  if (observer.stop_requested()) return cancelled();

  // (1) release, one flush for all of them (D4: the pointers go before any byte they named is reused).
  if (!plan.releases.empty()) VHDKIT_TRY(image.release(plan.releases));
  report.blocks_released = plan.releases.size();

  // (2) move, in batches of about kMoveBatchBytes: copy (into space no durable entry names: stopping or a
  // power cut between the copies loses nothing), flush, remap (D4: data flushed before the pointer moves).
  uint64_t move_bytes = 0;
  for (const Move& m : plan.moves) move_bytes += m.length;
  progress.plan_moves(move_bytes);
  for (size_t i = 0; i < plan.moves.size();) {
    if (observer.stop_requested()) return cancelled();
    size_t n = 0;
    uint64_t bytes = 0;
    while (i + n < plan.moves.size() && (n == 0 || bytes + plan.moves[i + n].length <= kMoveBatchBytes)) {
      const Move& m = plan.moves[i + n++];
      VHDKIT_TRY(image.file().copy_range(m.from, m.to, m.length));
      bytes += m.length;
      progress.moved(m.length);
    }
    VHDKIT_TRY(image.file().flush());
    VHDKIT_TRY(image.remap(std::span(plan.moves).subspan(i, n)));
    report.blocks_moved += n;
    i += n;
  }

  // (3) shrink, after the metadata that no longer names the tail is durable (D5).
  if (observer.stop_requested()) return cancelled();
  if (plan.new_file_size < layout.file_size) {
    VHDKIT_TRY(image.shrink(plan.new_file_size));
    set_file_size_after(report, plan.new_file_size);
  }
  VHDKIT_TRY(image.finish());
  explain_gain(policy, report);
  progress.finished();
  return report;
}

}  // namespace vhdkit::compact
