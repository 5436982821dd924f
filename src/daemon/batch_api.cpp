// SPDX-License-Identifier: Apache-2.0
#include "daemon/batch_api.h"

#include <fmt/format.h>

#include "daemon/http_api.h"
#include "service/api_paths.h"

namespace vhdkit::service {

using nlohmann::json;

ApiReply Api::compact_many(const ApiRequest& request) {
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return refuse(400, ReturnCode::InvalidParameter, "the body must be a JSON object with Paths or Folder");
  json forwarded = json::object();
  for (const auto& [key, value] : body.items()) {
    if (key == "Mode" || key == "DryRun" || key == "Force") {
      forwarded[key] = value;
    } else if (key != "Paths" && key != "Folder") {
      return refuse(400, ReturnCode::InvalidParameter,
                    "unknown field (this method takes Paths, Folder, Mode, DryRun, Force)");
    }
  }
  std::vector<std::string> paths;
  if (body.contains("Paths")) {
    if (!body["Paths"].is_array())
      return refuse(400, ReturnCode::IncorrectDataType, "Paths must be an array of strings");
    for (const auto& p : body["Paths"]) {
      if (!p.is_string()) return refuse(400, ReturnCode::IncorrectDataType, "Paths must be an array of strings");
      paths.push_back(p.get<std::string>());
    }
  }
  if (body.contains("Folder")) {
    if (!body["Folder"].is_string()) return refuse(400, ReturnCode::IncorrectDataType, "Folder must be a string");
    std::string folder = body["Folder"].get<std::string>();
    if (!folder.starts_with("/")) return refuse(400, ReturnCode::InvalidParameter, "Folder must be an absolute path");
    // Listed as the caller: a folder he may not read tells him nothing. Every file is sent on: the
    // dispatcher's probe, in the single call, tells an image from anything else (32770 for the rest).
    CallerEnv as_caller(env_, request.caller, ReadOnlyFiles::Refuse);
    auto names = as_caller.list_files(folder);
    if (!names) {
      ApiReply r;
      r.body = json{{"ReturnValue", static_cast<uint32_t>(names.error().code())}, {"Message", names.error().what()}};
      return r;
    }
    std::string dir = folder.ends_with("/") ? folder : folder + "/";
    for (const auto& n : *names) paths.push_back(dir + n);
  }
  if (paths.empty()) return refuse(400, ReturnCode::InvalidParameter, "name at least one image in Paths, or a Folder");
  if (paths.size() > kMaxBatchPaths) {
    return refuse(
        400, ReturnCode::InvalidParameter,
        fmt::format("{} paths in one request; at most {} (send several requests)", paths.size(), kMaxBatchPaths));
  }
  json entries = json::array();
  size_t started = 0;
  for (const auto& path : paths) {
    ApiRequest one = request;
    one.target = std::string(kCompactPathV2);
    json one_body = forwarded;
    one_body["Path"] = path;
    one.body = one_body.dump(-1, ' ', false, json::error_handler_t::replace);
    ApiReply r = compact(one, false);
    json entry = r.body;
    entry["Path"] = path;
    if (entry.value("ReturnValue", 0u) == static_cast<uint32_t>(ReturnCode::JobStarted)) ++started;
    entries.push_back(std::move(entry));
  }
  ApiReply reply;
  reply.body = json{{"ReturnValue", static_cast<uint32_t>(started ? ReturnCode::JobStarted : ReturnCode::Completed)},
                    {"Started", started},
                    {"Jobs", std::move(entries)}};
  return reply;
}

}  // namespace vhdkit::service
