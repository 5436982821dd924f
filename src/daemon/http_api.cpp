// SPDX-License-Identifier: Apache-2.0
#include "daemon/http_api.h"

#include <fmt/format.h>

#include <set>

#include "daemon/batch_api.h"
#include "service/api_paths.h"
#include "service/image_state.h"
#include "service/job_json.h"

namespace vhdkit::service {
namespace {

using nlohmann::json;

constexpr size_t kMaxPath = 4096;

// What a JSON body may hold: each field's name and whether it is required.
struct Field {
  const char* name;
  bool required;
};

// Parses the body as a JSON object with exactly the allowed fields; a refusal otherwise.
std::optional<ApiReply> parse_body(const std::string& body, std::initializer_list<Field> fields, json& out) {
  out = json::parse(body, nullptr, false);
  if (out.is_discarded()) {
    // Parse again for the parser's own words (it says where, and names ill-formed UTF-8).
    std::string why;
    try {
      json again = json::parse(body);
      why = "(no error on the second reading)";
    } catch (const json::parse_error& e) {
      why = e.what();
    }
    return Api::refuse(400, ReturnCode::InvalidParameter, fmt::format("the body is not valid JSON: {}", why));
  }
  if (!out.is_object()) return Api::refuse(400, ReturnCode::IncorrectDataType, "the body must be a JSON object");
  std::set<std::string> allowed;
  std::string names;
  for (const auto& f : fields) {
    allowed.insert(f.name);
    names += names.empty() ? f.name : std::string(", ") + f.name;
    if (f.required && !out.contains(f.name))
      return Api::refuse(400, ReturnCode::InvalidParameter, fmt::format("field {} is required", f.name));
  }
  for (const auto& [key, value] : out.items()) {
    if (!allowed.contains(key)) {
      return Api::refuse(
          400, ReturnCode::InvalidParameter,
          fmt::format("unknown field \"{}\" (this method takes {})", json(key).dump().substr(1, key.size()), names));
    }
  }
  return std::nullopt;
}

// Path: a string naming an absolute, normalized path (no ".", ".." or empty components, no NUL).
std::optional<ApiReply> check_path(const json& value, std::string& path) {
  if (!value.is_string()) return Api::refuse(400, ReturnCode::IncorrectDataType, "Path must be a string");
  path = value.get<std::string>();
  if (path.empty() || path.front() != '/')
    return Api::refuse(200, ReturnCode::InvalidParameter, "Path must be absolute (a fully qualified path)");
  if (path.size() > kMaxPath) return Api::refuse(200, ReturnCode::InvalidParameter, "Path is too long");
  if (path.find('\0') != std::string::npos)
    return Api::refuse(200, ReturnCode::InvalidParameter, "Path contains a NUL character");
  for (size_t start = 1; start <= path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part(path.data() + start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return Api::refuse(200, ReturnCode::InvalidParameter,
                         "Path must be normalized: no '.', '..' or empty components (give the image's real path)");
    }
    start = end + 1;
  }
  return std::nullopt;
}

std::optional<ApiReply> check_uint16(const json& j, const char* name, uint16_t& out) {
  if (!j.is_number_integer() && !j.is_number_unsigned())
    return Api::refuse(400, ReturnCode::IncorrectDataType, fmt::format("{} must be an integer", name));
  auto v = j.get<int64_t>();
  if (v < 0 || v > 0xFFFF)
    return Api::refuse(200, ReturnCode::InvalidParameter, fmt::format("{} {} is out of range", name, v));
  out = static_cast<uint16_t>(v);
  return std::nullopt;
}

ApiReply method_result(ReturnCode code, const std::string& message) {
  ApiReply r;
  r.body = json{{"ReturnValue", static_cast<uint32_t>(code)}};
  if (!message.empty()) r.body["Message"] = message;
  return r;
}

bool valid_job_id(const std::string& id) {
  return !id.empty() && id.size() <= 64 && id.find_first_not_of("0123456789abcdefABCDEF-") == std::string::npos;
}

}  // namespace

ApiReply Api::refuse(unsigned status, ReturnCode code, const std::string& message) {
  ApiReply r;
  r.status = status;
  r.body = json{{"ReturnValue", static_cast<uint32_t>(code)}, {"Message", message}};
  return r;
}

bool Api::is_image_work(const ApiRequest& request) {
  std::string target = request.target.substr(0, request.target.find('?'));
  return request.method == "POST" && (target == kCompactPathV2 || target == kCompactPathV1 || target == kStatePath ||
                                      target == kValidatePath || target == kCompactManyPathV2);
}

ApiReply Api::handle(const ApiRequest& request) {
  std::string target = request.target.substr(0, request.target.find('?'));
  const bool post = request.method == "POST", get = request.method == "GET";
  auto wrong_method = [&] {
    return refuse(405, ReturnCode::NotSupported, fmt::format("{} does not accept {}", target, request.method));
  };
  if (target == kCompactPathV2) return post ? compact(request, false) : wrong_method();
  if (target == kCompactPathV1) return post ? compact(request, true) : wrong_method();
  if (target == kCompactManyPathV2) return post ? compact_many(request) : wrong_method();
  if (target == kStatePath) return post ? state(request) : wrong_method();
  if (target == kValidatePath) return post ? validate(request) : wrong_method();
  if (target == kJobsPath) return get ? list_jobs(request) : wrong_method();
  std::string prefix = std::string(kJobsPath) + "/";
  if (target.starts_with(prefix)) {
    std::string rest = target.substr(prefix.size());
    constexpr std::string_view kChange = "/RequestStateChange";
    if (rest.ends_with(kChange)) {
      std::string id = rest.substr(0, rest.size() - kChange.size());
      if (valid_job_id(id)) return post ? change_job(request, id) : wrong_method();
    } else if (valid_job_id(rest)) {
      return get ? get_job(request, rest) : wrong_method();
    }
  }
  return refuse(404, ReturnCode::InvalidParameter, fmt::format("no such endpoint: {} (see docs/openapi.json)", target));
}

ApiReply Api::compact(const ApiRequest& request, bool v1) {
  json body;
  std::optional<ApiReply> refused =
      v1 ? parse_body(request.body, {{"Path", true}}, body)
         : parse_body(request.body,
                      {{"Path", true}, {"Mode", false}, {"DryRun", false}, {"Force", false}, {"IsParent", false}},
                      body);
  if (refused) return *refused;
  CompactRequest req;
  if (auto r = check_path(body["Path"], req.path)) return *r;
  if (body.contains("Mode")) {
    uint16_t number = 0;
    if (auto r = check_uint16(body["Mode"], "Mode", number)) return *r;
    auto mode = compact::mode_from_number(number, req.path);
    if (!mode) return method_result(mode.error().code(), mode.error().what());
    req.mode = *mode;
  }
  if (body.contains("DryRun")) {
    if (!body["DryRun"].is_boolean()) return refuse(400, ReturnCode::IncorrectDataType, "DryRun must be true or false");
    if (body["DryRun"].get<bool>()) req.action = compact::Action::DryRun;
  }
  if (body.contains("IsParent")) {
    if (!body["IsParent"].is_boolean())
      return refuse(400, ReturnCode::IncorrectDataType, "IsParent must be true or false");
    if (body["IsParent"].get<bool>()) req.parent_of_children = compact::ParentOfChildren::Declared;
  }
  ReadOnlyFiles read_only = ReadOnlyFiles::Refuse;
  if (body.contains("Force")) {
    if (!body["Force"].is_boolean()) return refuse(400, ReturnCode::IncorrectDataType, "Force must be true or false");
    if (body["Force"].get<bool>()) read_only = ReadOnlyFiles::Allow;
  }
  CallerEnv as_caller(env_, request.caller, read_only);
  req.access_env = &as_caller;
  req.owner = request.caller.uid;
  req.quota = request.caller.uid == 0 ? Quota::Exempt : Quota::Applies;  // root's batch scripts are not limited
  auto result = service_.CompactVirtualHardDisk(req);
  ApiReply r = method_result(result.return_value, result.message);
  if (result.job) r.body["Job"] = fmt::format("{}/{}", kJobsPath, result.job->instance_id());
  return r;
}

ApiReply Api::state(const ApiRequest& request) {
  json body;
  if (auto r = parse_body(request.body, {{"Path", true}}, body)) return *r;
  std::string path;
  if (auto r = check_path(body["Path"], path)) return *r;
  CallerEnv as_caller(env_, request.caller);
  auto s = get_virtual_hard_disk_state(as_caller, engine_, path);
  if (!s) return method_result(s.error().code(), s.error().what());
  auto opt = [](const auto& v) { return v ? json(*v) : json(nullptr); };
  ApiReply r = method_result(ReturnCode::Completed, "");
  r.body["State"] = json{{"Path", path},
                         {"FileSize", s->file_size},
                         {"InUse", s->in_use},
                         {"MinInternalSize", opt(s->min_internal_size)},
                         {"PhysicalSectorSize", opt(s->physical_sector_size)},
                         {"Alignment", opt(s->alignment)},
                         {"FragmentationPercentage", opt(s->fragmentation_percentage)},
                         {"Report", s->report ? to_json(*s->report) : json(nullptr)}};
  return r;
}

ApiReply Api::validate(const ApiRequest& request) {
  json body;
  if (auto r = parse_body(request.body, {{"Path", true}}, body)) return *r;
  std::string path;
  if (auto r = check_path(body["Path"], path)) return *r;
  CallerEnv as_caller(env_, request.caller);
  auto v = validate_virtual_hard_disk(as_caller, path);
  if (!v) return method_result(v.error().code(), v.error().what());
  ApiReply r = method_result(v->valid ? ReturnCode::Completed : ReturnCode::Failed,
                             v->valid ? "" : fmt::format("{} has {} problem(s)", path, v->problems.size()));
  r.body["Valid"] = v->valid;
  r.body["Problems"] = v->problems;
  return r;
}

std::shared_ptr<Job> Api::visible_job(const Caller& caller, const std::string& id) {
  auto job = service_.find_job(id);
  if (!job) return nullptr;
  auto owner = job->status().owner;
  if (caller.uid != 0 && owner != caller.uid) return nullptr;
  return job;
}

ApiReply Api::list_jobs(const ApiRequest& request) {
  json jobs = json::array();
  for (const auto& job : service_.jobs()) {
    JobStatus s = job->status();
    if (request.caller.uid == 0 || s.owner == request.caller.uid) jobs.push_back(to_json(s));
  }
  ApiReply r = method_result(ReturnCode::Completed, "");
  r.body["Jobs"] = jobs;
  if (auto problem = store_ ? store_->problem() : std::nullopt) r.body["Warning"] = *problem;
  return r;
}

ApiReply Api::get_job(const ApiRequest& request, const std::string& id) {
  auto job = visible_job(request.caller, id);
  if (!job)
    return refuse(404, ReturnCode::InvalidParameter,
                  fmt::format("no job {} (finished jobs are kept for TimeBeforeRemoval)", id));
  ApiReply r;
  r.body = to_json(job->status());
  return r;
}

ApiReply Api::change_job(const ApiRequest& request, const std::string& id) {
  json body;
  if (auto r = parse_body(request.body, {{"RequestedState", true}}, body)) return *r;
  uint16_t requested = 0;
  if (auto r = check_uint16(body["RequestedState"], "RequestedState", requested)) return *r;
  auto job = visible_job(request.caller, id);
  if (!job) return refuse(404, ReturnCode::InvalidParameter, fmt::format("no job {}", id));
  ReturnCode rc = job->request_state_change(requested);
  return method_result(rc, rc == ReturnCode::Completed || rc == ReturnCode::JobStarted
                               ? ""
                               : fmt::format("RequestStateChange({}) on a job that is {}: {}", requested,
                                             to_string(job->state()), describe(rc)));
}

}  // namespace vhdkit::service
