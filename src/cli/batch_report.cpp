// SPDX-License-Identifier: Apache-2.0
#include "cli/batch_report.h"

#include <fmt/format.h>

#include <filesystem>

#include "cli/json_output.h"
#include "cli/sizes.h"
#include "io/atomic_output.h"

namespace vhdkit::cli {
namespace {

constexpr ImageOutcome kOutcomes[] = {ImageOutcome::Compacted, ImageOutcome::Unchanged, ImageOutcome::WouldCompact,
                                      ImageOutcome::Skipped,   ImageOutcome::InUse,     ImageOutcome::Stopped,
                                      ImageOutcome::Failed};

double seconds(std::chrono::milliseconds d) { return static_cast<double>(d.count()) / 1000.0; }

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string_view to_string(ImageOutcome o) {
  switch (o) {
    case ImageOutcome::Compacted: return "compacted";
    case ImageOutcome::Unchanged: return "unchanged";
    case ImageOutcome::WouldCompact: return "would compact";
    case ImageOutcome::Skipped: return "skipped";
    case ImageOutcome::InUse: return "in use";
    case ImageOutcome::Stopped: return "stopped";
    case ImageOutcome::Failed: return "failed";
  }
  return "?";
}

BatchTotals totals(const std::vector<ImageResult>& results) {
  BatchTotals t;
  for (const auto& r : results) {
    ++t.images;
    ++t.by_outcome[static_cast<size_t>(r.outcome)];
    t.size_before += r.size_before;
    t.size_after += r.size_after;
    t.bytes_released += r.bytes_released;
  }
  return t;
}

std::string report_json(const std::vector<ImageResult>& results) {
  Json images = Json::array();
  for (const auto& r : results) {
    Json j;
    j["Path"] = r.path;
    j["Format"] = r.format;
    j["Mode"] = r.mode;
    j["SizeBefore"] = r.size_before;
    j["SizeAfter"] = r.size_after;
    j["BytesReleased"] = r.bytes_released;
    j["DurationSeconds"] = seconds(r.duration);
    j["Outcome"] = to_string(r.outcome);
    j["Reason"] = r.reason;
    j["ReturnCode"] = r.return_code;
    images.push_back(std::move(j));
  }
  BatchTotals t = totals(results);
  Json summary;
  summary["Images"] = t.images;
  for (auto o : kOutcomes) summary[std::string(to_string(o))] = t.by_outcome[static_cast<size_t>(o)];
  summary["SizeBefore"] = t.size_before;
  summary["SizeAfter"] = t.size_after;
  summary["BytesReleased"] = t.bytes_released;
  Json report;
  report["Images"] = std::move(images);
  report["Summary"] = std::move(summary);
  return json_text(report) + "\n";
}

std::string report_csv(const std::vector<ImageResult>& results) {
  std::string out =
      "path,format,mode,size_before,size_after,bytes_released,duration_seconds,outcome,reason,return_code\n";
  for (const auto& r : results) {
    out += fmt::format("{},{},{},{},{},{},{:.3f},{},{},{}\n", csv_field(r.path), r.format, r.mode, r.size_before,
                       r.size_after, r.bytes_released, seconds(r.duration), to_string(r.outcome), csv_field(r.reason),
                       r.return_code);
  }
  return out;
}

Status write_report(const std::string& path, const std::vector<ImageResult>& results) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::string text;
  if (ext == ".csv") {
    text = report_csv(results);
  } else if (ext == ".json") {
    text = report_json(results);
  } else {
    return fail(ReturnCode::InvalidParameter, path, "a report is FILE.json or FILE.csv");
  }
  return io::write_atomically(io::Env::posix(), path,
                              [&](io::File& f) { return f.write_at(0, std::as_bytes(std::span(text))); });
}

std::vector<std::string> summary_table(const std::vector<ImageResult>& results) {
  std::vector<std::string> lines;
  lines.push_back(fmt::format("  {:<13} {:>10} {:>10} {:>10} {:>8}  {}", "outcome", "before", "after", "released",
                              "seconds", "image"));
  for (const auto& r : results) {
    std::string line =
        fmt::format("  {:<13} {:>10} {:>10} {:>10} {:>8.1f}  {}", to_string(r.outcome), human_size(r.size_before),
                    human_size(r.size_after), human_size(r.bytes_released), seconds(r.duration), r.path);
    if (!r.reason.empty()) line += fmt::format(" ({})", r.reason);
    lines.push_back(std::move(line));
  }
  BatchTotals t = totals(results);
  std::string counts;
  for (auto o : kOutcomes) {
    size_t n = t.by_outcome[static_cast<size_t>(o)];
    if (n) counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", n, to_string(o));
  }
  lines.push_back(fmt::format("  {} images: {}; {} -> {}, {} released", t.images, counts.empty() ? "none" : counts,
                              human_size(t.size_before), human_size(t.size_after), human_size(t.bytes_released)));
  return lines;
}

}  // namespace vhdkit::cli
