// SPDX-License-Identifier: Apache-2.0
// The JSON form of a job and of a compaction report, shared by `vhdkit compact --json`, `vhdkit jobs`, the
// daemon's HTTP API and its job store. Field names are CIM_ConcreteJob's (docs/openapi.yaml lists them).
#pragma once

#include <nlohmann/json.hpp>

#include "compact/compact.h"
#include "core/error.h"
#include "service/job.h"

namespace vhdkit::service {

nlohmann::json to_json(const compact::Report& report);
nlohmann::json to_json(const JobStatus& status);

// The JSON text of a value, which cannot throw: text that is not UTF-8 (host paths are bytes, and a parent
// locator holds whatever its writer put there) becomes U+FFFD instead of an exception on whichever thread
// serializes it. Every record and reply goes through this.
std::string json_text(const nlohmann::json& j, int indent = -1);

// The inverse, for clients and the job store. Missing or ill-typed fields are InvalidParameter.
Result<compact::Report> report_from_json(const nlohmann::json& j);
Result<JobStatus> job_status_from_json(const nlohmann::json& j);

// CIM's text forms: datetime "yyyymmddhhmmss.mmmmmm+000" (UTC) and interval "ddddddddhhmmss.mmmmmm:000".
std::string cim_datetime(Clock::time_point t);
std::string cim_interval(std::chrono::milliseconds d);
std::optional<Clock::time_point> parse_cim_datetime(const std::string& text);
std::optional<std::chrono::milliseconds> parse_cim_interval(const std::string& text);

}  // namespace vhdkit::service
