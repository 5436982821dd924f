// SPDX-License-Identifier: Apache-2.0
// The record of a batch: one row per image (what --report writes as JSON or CSV, and the summary table).
// Sizes are the file's own (stat) before and after, so a report can be checked against the file system.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace vhdkit::cli {

enum class ImageOutcome {
  Compacted,     // the job completed and the file is smaller
  Unchanged,     // the job completed and released nothing (the reason in `reason`)
  WouldCompact,  // dry run: what the run would release
  Skipped,       // not compacted: below a threshold, nothing to gain, deadline passed, not an image ...
  InUse,         // another program holds the image (32774)
  Stopped,       // the time budget ran out: stopped at a safe point, a rerun finishes it
  Failed,        // refused or ended in Exception: return_code and message say why
};
std::string_view to_string(ImageOutcome o);  // "compacted", "unchanged", "would compact", "skipped", ...

struct ImageResult {
  std::string path;
  std::string format;  // "vhd", "vhdx", "unknown"
  std::string mode;    // "full", ...
  uint64_t size_before = 0;
  uint64_t size_after = 0;
  uint64_t bytes_released = 0;  // size_before - size_after (a dry run: what it would release)
  std::chrono::milliseconds duration{0};
  ImageOutcome outcome = ImageOutcome::Failed;
  std::string reason;        // why skipped/unchanged/stopped, or the failure's message
  uint32_t return_code = 0;  // the reference's value for InUse and Failed; 0 otherwise
};

struct BatchTotals {
  size_t images = 0;
  size_t by_outcome[7] = {};
  uint64_t size_before = 0, size_after = 0, bytes_released = 0;
};
BatchTotals totals(const std::vector<ImageResult>& results);

// JSON: {"Images": [...], "Summary": {...}}; CSV: a header line, then one line per image (RFC 4180 quoting).
std::string report_json(const std::vector<ImageResult>& results);
std::string report_csv(const std::vector<ImageResult>& results);
// Writes FILE (a whole new file, D8): CSV when its name ends in .csv, JSON when .json; InvalidParameter else.
Status write_report(const std::string& path, const std::vector<ImageResult>& results);
// The table printed at the end of a run, one line per image and a line of totals.
std::vector<std::string> summary_table(const std::vector<ImageResult>& results);

}  // namespace vhdkit::cli
