// SPDX-License-Identifier: Apache-2.0
#include "service/job_json.h"

#include <fmt/format.h>

#include <cstdio>
#include <ctime>

#include "disk/virtual_disk.h"

namespace vhdkit::service {

using nlohmann::json;
using std::chrono::milliseconds;

std::string cim_datetime(Clock::time_point t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}{:02}{:02}{:02}{:02}{:02}.{:06}+000", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, us % 1000000);
}

std::string cim_interval(milliseconds d) {
  int64_t ms = d.count() < 0 ? 0 : d.count();
  int64_t s = ms / 1000;
  return fmt::format("{:08}{:02}{:02}{:02}.{:06}:000", s / 86400, s / 3600 % 24, s / 60 % 60, s % 60,
                     (ms % 1000) * 1000);
}

std::optional<Clock::time_point> parse_cim_datetime(const std::string& text) {
  std::tm tm{};
  long micro = 0;
  if (text.size() != 25 || std::sscanf(text.c_str(), "%4d%2d%2d%2d%2d%2d.%6ld", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                                       &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &micro) != 7) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t secs = timegm(&tm);
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(secs) + std::chrono::microseconds(micro)));
}

std::optional<milliseconds> parse_cim_interval(const std::string& text) {
  long long days = 0;
  int h = 0, m = 0, s = 0;
  long micro = 0;
  if (text.size() != 25 || std::sscanf(text.c_str(), "%8lld%2d%2d%2d.%6ld", &days, &h, &m, &s, &micro) != 5)
    return std::nullopt;
  return milliseconds(((days * 24 + h) * 60 + m) * 60000LL + s * 1000LL + micro / 1000);
}

namespace {

json optional_count(const std::optional<uint64_t>& n) { return n ? json(*n) : json(nullptr); }

json volumes_json(const std::vector<compact::VolumeReport>& volumes) {
  json out = json::array();
  for (const compact::VolumeReport& v : volumes) {
    out.push_back(json{{"Table", v.table},
                       {"Type", v.type},
                       {"Offset", v.offset},
                       {"Size", v.size},
                       {"FileSystem", v.filesystem},
                       {"State", v.state},
                       {"Reason", v.reason},
                       {"UsedBytes", v.used_bytes},
                       {"FreeBytes", v.free_bytes}});
  }
  return out;
}

}  // namespace

std::string json_text(const json& j, int indent) { return j.dump(indent, ' ', false, json::error_handler_t::replace); }

json to_json(const compact::Report& r) {
  json releases{{"Full", optional_count(r.releases.full)},
                {"Quick", optional_count(r.releases.quick)},
                {"Prezeroed", optional_count(r.releases.prezeroed)}};
  return json{
      {"Path", r.path},
      {"Format", std::string(disk::to_string(r.format))},
      {"Mode", static_cast<uint16_t>(r.mode)},
      {"ModeNote", r.mode_note},
      {"Outcome", r.outcome == compact::Outcome::Completed ? "Completed" : "Cancelled"},
      {"DryRun", r.dry_run},
      {"FileSizeBefore", r.file_size_before},
      {"FileSizeAfter", r.file_size_after},
      {"BlockSize", r.block_size},
      {"BlocksTotal", r.blocks_total},
      {"BlocksAllocatedBefore", r.blocks_allocated_before},
      {"BlocksReleased", r.blocks_released},
      {"BlocksMoved", r.blocks_moved},
      {"BytesReleased", r.bytes_released},
      {"Volumes", volumes_json(r.volumes)},
      {"BlocksReleasedByMode", std::move(releases)},
      {"StrandedFreeBytes", r.stranded_free_bytes},
      {"GainNote", r.gain_note},
  };
}

json to_json(const JobStatus& s) {
  json j{
      {"InstanceID", s.instance_id},
      {"Name", s.action == compact::Action::DryRun ? "CompactVirtualHardDisk (dry run)" : "CompactVirtualHardDisk"},
      {"Path", s.path},
      {"Mode", static_cast<uint16_t>(s.mode)},
      {"JobState", static_cast<uint16_t>(s.state)},
      {"JobStatus", std::string(to_string(s.state))},
      {"PercentComplete", s.percent_complete},
      {"ErrorCode", s.error_code},
      {"ErrorDescription", s.error_description},
      {"Cancellable", s.cancellable},
      {"TimeSubmitted", cim_datetime(s.time_submitted)},
      {"StartTime", s.start_time ? json(cim_datetime(*s.start_time)) : json(nullptr)},
      {"ElapsedTime", cim_interval(s.elapsed)},
      {"TimeOfLastStateChange", cim_datetime(s.time_of_last_state_change)},
      {"TimeBeforeRemoval", cim_interval(s.time_before_removal)},
      {"DeleteOnCompletion", true},
  };
  j["Report"] = s.report ? to_json(*s.report) : json(nullptr);
  j["Owner"] = s.owner ? json(*s.owner) : json(nullptr);
  return j;
}

namespace {

// Reads one field, refusing a missing one or one of the wrong type with a message naming it.
template <class T>
Result<T> field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return fail(ReturnCode::InvalidParameter, "", fmt::format("field {} is missing", name));
  try {
    return it->template get<T>();
  } catch (const json::exception&) {
    return fail(ReturnCode::IncorrectDataType, "", fmt::format("field {} has the wrong type", name));
  }
}

Result<Clock::time_point> datetime_field(const json& j, const char* name) {
  VHDKIT_ASSIGN(std::string text, field<std::string>(j, name));
  auto t = parse_cim_datetime(text);
  if (!t) return fail(ReturnCode::IncorrectDataType, "", fmt::format("field {} is not a CIM datetime", name));
  return *t;
}

Result<milliseconds> interval_field(const json& j, const char* name) {
  VHDKIT_ASSIGN(std::string text, field<std::string>(j, name));
  auto d = parse_cim_interval(text);
  if (!d) return fail(ReturnCode::IncorrectDataType, "", fmt::format("field {} is not a CIM interval", name));
  return *d;
}

// The file-system pass's part of a report: absent in reports the job store kept from before it existed.
Status file_system_fields(const json& j, compact::Report& r) {
  if (auto it = j.find("Volumes"); it != j.end()) {
    if (!it->is_array()) return fail(ReturnCode::IncorrectDataType, "", "field Volumes is not an array");
    for (const json& v : *it) {
      if (!v.is_object()) return fail(ReturnCode::IncorrectDataType, "", "an entry of Volumes is not an object");
      compact::VolumeReport out;
      VHDKIT_ASSIGN(out.table, field<std::string>(v, "Table"));
      VHDKIT_ASSIGN(out.type, field<std::string>(v, "Type"));
      VHDKIT_ASSIGN(out.offset, field<uint64_t>(v, "Offset"));
      VHDKIT_ASSIGN(out.size, field<uint64_t>(v, "Size"));
      VHDKIT_ASSIGN(out.filesystem, field<std::string>(v, "FileSystem"));
      VHDKIT_ASSIGN(out.state, field<std::string>(v, "State"));
      VHDKIT_ASSIGN(out.reason, field<std::string>(v, "Reason"));
      VHDKIT_ASSIGN(out.used_bytes, field<uint64_t>(v, "UsedBytes"));
      VHDKIT_ASSIGN(out.free_bytes, field<uint64_t>(v, "FreeBytes"));
      r.volumes.push_back(std::move(out));
    }
  }
  if (auto it = j.find("BlocksReleasedByMode"); it != j.end()) {
    if (!it->is_object()) return fail(ReturnCode::IncorrectDataType, "", "field BlocksReleasedByMode is not an object");
    for (auto [name, slot] : {std::pair{"Full", &r.releases.full}, std::pair{"Quick", &r.releases.quick},
                              std::pair{"Prezeroed", &r.releases.prezeroed}}) {
      auto n = it->find(name);
      if (n == it->end() || n->is_null()) continue;
      if (!n->is_number_unsigned())
        return fail(ReturnCode::IncorrectDataType, "",
                    fmt::format("field BlocksReleasedByMode.{} is not a count", name));
      *slot = n->get<uint64_t>();
    }
  }
  if (j.contains("StrandedFreeBytes")) {
    VHDKIT_ASSIGN(r.stranded_free_bytes, field<uint64_t>(j, "StrandedFreeBytes"));
  }
  if (j.contains("GainNote")) {
    VHDKIT_ASSIGN(r.gain_note, field<std::string>(j, "GainNote"));
  }
  return ok();
}

}  // namespace

Result<compact::Report> report_from_json(const json& j) {
  if (!j.is_object()) return fail(ReturnCode::IncorrectDataType, "", "Report is not an object");
  compact::Report r;
  VHDKIT_ASSIGN(r.path, field<std::string>(j, "Path"));
  VHDKIT_ASSIGN(std::string format, field<std::string>(j, "Format"));
  r.format = disk::format_from_string(format).value_or(disk::Format::Raw);
  VHDKIT_ASSIGN(uint16_t mode, field<uint16_t>(j, "Mode"));
  VHDKIT_ASSIGN(r.mode, compact::mode_from_number(mode, r.path));
  VHDKIT_ASSIGN(r.mode_note, field<std::string>(j, "ModeNote"));
  VHDKIT_ASSIGN(std::string outcome, field<std::string>(j, "Outcome"));
  r.outcome = outcome == "Cancelled" ? compact::Outcome::Cancelled : compact::Outcome::Completed;
  VHDKIT_ASSIGN(r.dry_run, field<bool>(j, "DryRun"));
  VHDKIT_ASSIGN(r.file_size_before, field<uint64_t>(j, "FileSizeBefore"));
  VHDKIT_ASSIGN(r.file_size_after, field<uint64_t>(j, "FileSizeAfter"));
  VHDKIT_ASSIGN(r.block_size, field<uint64_t>(j, "BlockSize"));
  VHDKIT_ASSIGN(r.blocks_total, field<uint64_t>(j, "BlocksTotal"));
  VHDKIT_ASSIGN(r.blocks_allocated_before, field<uint64_t>(j, "BlocksAllocatedBefore"));
  VHDKIT_ASSIGN(r.blocks_released, field<uint64_t>(j, "BlocksReleased"));
  VHDKIT_ASSIGN(r.blocks_moved, field<uint64_t>(j, "BlocksMoved"));
  VHDKIT_ASSIGN(r.bytes_released, field<uint64_t>(j, "BytesReleased"));
  VHDKIT_TRY(file_system_fields(j, r));
  return r;
}

Result<JobStatus> job_status_from_json(const json& j) {
  if (!j.is_object()) return fail(ReturnCode::IncorrectDataType, "", "the job is not a JSON object");
  JobStatus s;
  VHDKIT_ASSIGN(s.instance_id, field<std::string>(j, "InstanceID"));
  VHDKIT_ASSIGN(s.path, field<std::string>(j, "Path"));
  VHDKIT_ASSIGN(uint16_t mode, field<uint16_t>(j, "Mode"));
  VHDKIT_ASSIGN(s.mode, compact::mode_from_number(mode, s.path));
  VHDKIT_ASSIGN(std::string name, field<std::string>(j, "Name"));
  s.action = name.ends_with("(dry run)") ? compact::Action::DryRun : compact::Action::Compact;
  VHDKIT_ASSIGN(uint16_t state, field<uint16_t>(j, "JobState"));
  if (state < 2 || state > 10) return fail(ReturnCode::InvalidParameter, "", "JobState is out of range");
  s.state = static_cast<JobState>(state);
  VHDKIT_ASSIGN(s.percent_complete, field<uint16_t>(j, "PercentComplete"));
  VHDKIT_ASSIGN(s.error_code, field<uint32_t>(j, "ErrorCode"));
  VHDKIT_ASSIGN(s.error_description, field<std::string>(j, "ErrorDescription"));
  VHDKIT_ASSIGN(s.cancellable, field<bool>(j, "Cancellable"));
  VHDKIT_ASSIGN(s.time_submitted, datetime_field(j, "TimeSubmitted"));
  if (j.contains("StartTime") && !j["StartTime"].is_null()) {
    VHDKIT_ASSIGN(s.start_time, datetime_field(j, "StartTime"));
  }
  VHDKIT_ASSIGN(s.elapsed, interval_field(j, "ElapsedTime"));
  VHDKIT_ASSIGN(s.time_of_last_state_change, datetime_field(j, "TimeOfLastStateChange"));
  VHDKIT_ASSIGN(milliseconds removal, interval_field(j, "TimeBeforeRemoval"));
  s.time_before_removal = std::chrono::duration_cast<std::chrono::seconds>(removal);
  if (j.contains("Owner") && !j["Owner"].is_null()) {
    VHDKIT_ASSIGN(s.owner, field<uint32_t>(j, "Owner"));
  }
  if (j.contains("Report") && !j["Report"].is_null()) {
    VHDKIT_ASSIGN(s.report, report_from_json(j["Report"]));
  }
  return s;
}

}  // namespace vhdkit::service
